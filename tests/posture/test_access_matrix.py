"""Who may call what: every URL pattern of the project has a row here (docs/roles.md).

A new URL without a row fails test_every_url_pattern_has_a_row.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from audit.models import Event, VerificationRun
from posture.context import EXECUTIVE_PAGE_ROLES, ONCALL_PAGE_ROLES
from posture.models import PolicyException, Rule
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db

ROLES = ["executive", "auditor", "engineer", "approver", "oncall", "admin"]
PERSONAS = ["anonymous", "nobody", *ROLES, "source"]


def everyone(status: int, **exceptions: int) -> dict[str, int]:
    return {persona: exceptions.get(persona, status) for persona in PERSONAS}


def people_only(status: int, allowed=ROLES, denied: int = 403) -> dict[str, int]:
    """`status` for the named roles, `denied` for other people, 401 for anyone else.

    A source token is no credential for people's endpoints, so a source is anonymous there.
    """
    return {
        persona: status
        if persona in allowed
        else 401
        if persona in ("anonymous", "source")
        else denied
        for persona in PERSONAS
    }


def pages_for(allowed=ROLES) -> dict[str, int]:
    return {
        persona: 200 if persona in allowed else 302 if persona in ("anonymous", "source") else 403
        for persona in PERSONAS
    }


# (url name, method, path, expected status per persona). Paths may use {event} for an event id.
MATRIX = [
    ("healthz", "get", "/healthz", everyone(200)),
    ("home", "get", "/", pages_for()),
    ("login", "get", "/accounts/login/", everyone(200)),
    ("logout", "post", "/accounts/logout/", everyone(302)),
    (
        "metrics",
        "get",
        "/metrics",
        {**people_only(200, allowed=["admin"]), "anonymous": 401, "source": 401},
    ),
    ("admin", "get", "/admin/", {**everyone(302), "admin": 200}),
    ("api-schema", "get", "/api/schema/", people_only(200)),
    ("api-docs", "get", "/api/docs/", people_only(200)),
    ("api-events", "get", "/api/v1/events", {**people_only(200), "source": 403}),
    ("api-events", "post", "/api/v1/events", {**people_only(403, allowed=[]), "source": 201}),
    ("api-event", "get", "/api/v1/events/{event}", people_only(200)),
    (
        "api-event-schema",
        "get",
        "/api/v1/schema/events.json",
        {**people_only(200), "source": 200, "nobody": 200},
    ),
    ("api-public-key", "get", "/api/v1/ledger/public-key", people_only(200)),
    ("api-checkpoints", "get", "/api/v1/ledger/checkpoints", people_only(200)),
    (
        "api-checkpoints",
        "post",
        "/api/v1/ledger/checkpoints",
        people_only(201, allowed=["auditor", "admin"]),
    ),
    ("api-verify", "get", "/api/v1/ledger/verify", people_only(200)),
    (
        "api-verify",
        "post",
        "/api/v1/ledger/verify",
        people_only(202, allowed=["auditor", "admin", "oncall"]),
    ),
    ("api-verify-run", "get", "/api/v1/ledger/verify/{run}", people_only(200)),
    ("api-slis", "get", "/api/v1/slis", people_only(200)),
    ("api-frameworks", "get", "/api/v1/frameworks", people_only(200)),
    ("api-framework-status", "get", "/api/v1/frameworks/soc2-2017/status", people_only(200)),
    ("api-rules", "get", "/api/v1/rules", people_only(200)),
    (
        "api-event-triage",
        "post",
        "/api/v1/events/{event}/triage",
        people_only(400, allowed=["engineer", "oncall", "admin"]),
    ),
    # Pages (posture/pages/): the dashboards by role, the drilldown pages for every role.
    ("dashboard-executive", "get", "/dashboards/executive", pages_for(EXECUTIVE_PAGE_ROLES)),
    ("dashboard-oncall", "get", "/dashboards/oncall", pages_for(ONCALL_PAGE_ROLES)),
    ("dashboard-oncall-panels", "get", "/dashboards/oncall/panels", pages_for(ONCALL_PAGE_ROLES)),
    ("frameworks", "get", "/frameworks", pages_for()),
    ("framework", "get", "/frameworks/pci-dss-4.0", pages_for()),
    ("control", "get", "/frameworks/pci-dss-4.0/controls/10.2.1", pages_for()),
    ("rules", "get", "/rules", pages_for()),
    ("rule", "get", "/rules/{rule}", pages_for()),
    ("events", "get", "/events", pages_for()),
    ("events-csv", "get", "/events.csv", pages_for()),
    ("event", "get", "/events/{event}", pages_for()),
    (
        "event-verify",
        "post",
        "/events/{event}/verify",
        {**pages_for(("auditor", "oncall", "admin")), "nobody": 403},
    ),
    (
        "event-triage",
        "post",
        "/events/{event}/triage",
        {
            **pages_for(("engineer", "oncall", "admin")),
            # An empty form is refused, saying what is missing.
            **dict.fromkeys(("engineer", "oncall", "admin"), 400),
        },
    ),
    # Exceptions (waivers): every role reads, engineers request, approvers decide, the
    # requester or an approver revokes; enforcement points read the active ones with a source
    # token. Transitions name exception 0, so permitted callers get past the role check to 404.
    ("api-exceptions", "get", "/api/v1/exceptions", people_only(200)),
    (
        "api-exceptions",
        "post",
        "/api/v1/exceptions",
        people_only(400, allowed=["engineer", "admin"]),
    ),
    ("api-exception", "get", "/api/v1/exceptions/{exception}", people_only(200)),
    (
        "api-exception-approve",
        "post",
        "/api/v1/exceptions/0/approve",
        people_only(404, allowed=["approver", "admin"]),
    ),
    (
        "api-exception-reject",
        "post",
        "/api/v1/exceptions/0/reject",
        people_only(404, allowed=["approver", "admin"]),
    ),
    (
        "api-exception-revoke",
        "post",
        "/api/v1/exceptions/0/revoke",
        people_only(404, allowed=["engineer", "approver", "admin"]),
    ),
    (
        "api-exceptions-active",
        "get",
        "/api/v1/exceptions/active",
        {**people_only(200), "source": 200, "nobody": 200},
    ),
    (
        "api-exceptions-bundle",
        "get",
        "/api/v1/exceptions/bundle.tar.gz",
        {**people_only(200), "source": 200, "nobody": 200},
    ),
    ("exceptions", "get", "/exceptions", pages_for()),
    ("exception-new", "get", "/exceptions/new", pages_for(("engineer", "admin"))),
    ("exception", "get", "/exceptions/{exception}", pages_for()),
    *[
        (
            name,
            "post",
            f"/exceptions/0/{action}",
            {**pages_for(allowed), **dict.fromkeys(allowed, 404)},
        )
        for name, action, allowed in [
            ("exception-approve", "approve", ("approver", "admin")),
            ("exception-reject", "reject", ("approver", "admin")),
            ("exception-revoke", "revoke", ("engineer", "approver", "admin")),
        ]
    ],
    # Engine adapters: sources only. The empty form body a source sends here is not JSON, so
    # it gets past authentication and permission to the body check (415).
    *[
        (name, "post", path, {**people_only(403, allowed=[]), "source": 415})
        for name, path in [
            ("api-ingest-opa-logs", "/api/v1/ingest/opa/logs"),
            ("api-ingest-opa-status", "/api/v1/ingest/opa/status"),
            ("api-ingest-gatekeeper", "/api/v1/ingest/gatekeeper"),
            ("api-ingest-kyverno", "/api/v1/ingest/kyverno"),
            ("api-ingest-ocsf", "/api/v1/ingest/ocsf"),
        ]
    ],
]


def url_names(resolver: URLResolver, namespace: str = "") -> set[str]:
    names = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                names.add("admin")  # the admin site checks is_staff for all its pages
            else:
                names |= url_names(pattern)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(pattern.name)
        elif isinstance(pattern, URLPattern):
            names.add(str(pattern.pattern))
    return names


def test_every_url_pattern_has_a_row():
    assert url_names(get_resolver()) == {row[0] for row in MATRIX}


@pytest.fixture
def clients(people, source_token) -> dict[str, APIClient]:
    clients = {"anonymous": APIClient()}
    for name, user in people.items():
        clients[name] = APIClient()
        clients[name].force_login(user)
    clients["source"] = APIClient()
    clients["source"].credentials(HTTP_AUTHORIZATION=f"Bearer {source_token}")
    return clients


@pytest.mark.parametrize(
    ("name", "method", "path", "expected"),
    MATRIX,
    ids=[f"{method} {name}" for name, method, _, _ in MATRIX],
)
def test_access(clients, people, source_client, name, method, path, expected):
    post_events(source_client, [event(1)])
    run = VerificationRun.objects.create(started_at="2026-11-25T00:00:00Z", status="passed")
    rule = Rule.objects.get_or_create(policy="kubernetes.admission", name="require-labels")[0]
    waiver = PolicyException.objects.create(
        rule=rule,
        requester=people["engineer"],
        justification="access matrix",
        duration_days=1,
        created_at=run.started_at,
    )
    path = path.format(event=Event.objects.get().pk, run=run.pk, rule=rule.pk, exception=waiver.pk)
    seen = {}
    for persona, client in clients.items():
        if method == "post" and path == "/api/v1/events":
            response = post_events(client, [event(1000 + PERSONAS.index(persona))])
        else:
            response = getattr(client, method)(path)
        seen[persona] = response.status_code
    assert seen == expected
