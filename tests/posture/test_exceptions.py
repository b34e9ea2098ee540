"""Exceptions: the state machine, four eyes, expiry at read time, the OPA bundle, notices."""

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from audit.models import Event, EventKind
from posture.exceptions import (
    ExceptionForbidden,
    ExceptionRefused,
    exception_approve,
    exception_covers,
    exception_is_active,
    exception_notify,
    exception_reject,
    exception_request,
    exception_revoke,
    exceptions_bundle,
    exceptions_expire,
    exceptions_notify_expiring,
)
from posture.models import (
    ExceptionApproval,
    ExceptionNotification,
    ExceptionState,
    NotificationKind,
    PolicyException,
    Rule,
)
from tests.conftest import make_person

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def rule() -> Rule:
    return Rule.objects.create(
        policy="kubernetes.admission", name="require-labels", severity="high", owner_team="platform"
    )


@pytest.fixture
def critical_rule() -> Rule:
    return Rule.objects.create(
        policy="k8s.security", name="disallow-privileged", severity="critical"
    )


@pytest.fixture
def second_approver(people):
    return make_person("approver2", "approver")


def _request(rule, requester, **fields):
    values = {
        "justification": "vendor chart lacks labels; fix in JIRA-1",
        "duration_days": 7,
        "environment": "prod",
        "service": "payments",
        "resource_pattern": "deployment/payments-*",
        "at": T0,
    }
    values.update(fields)
    return exception_request(rule=rule, requester=requester, **values)


def _transitions() -> list[dict]:
    rows = Event.objects.filter(kind=EventKind.EXCEPTION_TRANSITION).order_by("seq")
    return [
        {
            "subject": row.subject,
            **{
                k: orjson.loads(bytes(row.canonical))["event"]["attributes"][k]
                for k in ("from", "to")
            },
        }
        for row in rows
    ]


# --- requests -------------------------------------------------------------------------------


def test_an_engineer_requests_an_exception_and_the_ledger_records_it(rule, people):
    exception = _request(rule, people["engineer"])

    assert exception.state == ExceptionState.REQUESTED
    assert exception.created_at == T0
    assert _transitions() == [{"subject": "engineer", "from": "", "to": "requested"}]


def test_a_request_longer_than_the_severity_allows_is_refused_naming_the_field(
    rule, critical_rule, people
):
    with pytest.raises(ExceptionRefused) as refused:
        _request(rule, people["engineer"], duration_days=31)
    assert refused.value.field == "duration_days"
    with pytest.raises(ExceptionRefused):
        _request(critical_rule, people["engineer"], duration_days=8)
    assert _request(critical_rule, people["engineer"], duration_days=7).duration_days == 7
    assert PolicyException.objects.count() == 1


def test_the_longest_duration_comes_from_settings(rule, people, settings):
    settings.POSTURE_EXCEPTION_MAX_DAYS = {**settings.POSTURE_EXCEPTION_MAX_DAYS, "high": 3}
    with pytest.raises(ExceptionRefused):
        _request(rule, people["engineer"], duration_days=4)


def test_a_request_needs_a_justification(rule, people):
    with pytest.raises(ExceptionRefused) as refused:
        _request(rule, people["engineer"], justification="  ")
    assert refused.value.field == "justification"


def test_only_engineers_and_admins_request(rule, people):
    with pytest.raises(ExceptionForbidden):
        _request(rule, people["auditor"])


def test_an_extension_links_the_exception_it_extends(rule, people):
    first = _request(rule, people["engineer"])
    exception_approve(exception=first, approver=people["approver"], at=T0)
    extension = _request(rule, people["engineer"], extends=first)
    assert extension.extends == first
    assert list(first.extensions.all()) == [extension]


def test_an_extension_of_a_pending_request_is_refused(rule, people):
    first = _request(rule, people["engineer"])
    with pytest.raises(ExceptionRefused) as refused:
        _request(rule, people["engineer"], extends=first)
    assert refused.value.field == "extends"


# --- approve, reject, revoke ----------------------------------------------------------------


def test_an_approver_approves_and_the_exception_is_active_for_its_duration(rule, people):
    exception = _request(rule, people["engineer"])
    approved = exception_approve(
        exception=exception, approver=people["approver"], comment="ok", at=T0
    )

    assert approved.state == ExceptionState.APPROVED
    assert approved.active_from == T0
    assert approved.expires_at == T0 + timedelta(days=7)
    assert approved.decided_by == people["approver"]
    assert exception_is_active(approved, T0 + timedelta(days=6, hours=23))
    assert not exception_is_active(approved, T0 + timedelta(days=7))
    assert _transitions()[-1] == {"subject": "approver", "from": "requested", "to": "approved"}


def test_the_requester_cannot_approve_even_as_an_approver(rule, people):
    both = make_person("both", "engineer", "approver")
    exception = _request(rule, both)
    with pytest.raises(ExceptionForbidden):
        exception_approve(exception=exception, approver=both, at=T0)
    with pytest.raises(ExceptionForbidden):
        exception_reject(exception=exception, approver=both, comment="no", at=T0)
    assert PolicyException.objects.get().state == ExceptionState.REQUESTED


def test_the_database_refuses_an_approval_by_the_requester_bypassing_the_service(rule, people):
    exception = _request(rule, people["engineer"])
    with pytest.raises(IntegrityError), transaction.atomic():
        ExceptionApproval.objects.create(
            exception=exception,
            approver=people["engineer"],
            requester=people["engineer"],
            decided_at=T0,
        )


def test_the_database_refuses_a_decision_by_the_requester_bypassing_the_service(rule, people):
    exception = _request(rule, people["engineer"])
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyException.objects.filter(pk=exception.pk).update(decided_by=people["engineer"])


def test_the_database_refuses_the_same_approver_twice(rule, people):
    exception = _request(rule, people["engineer"])
    ExceptionApproval.objects.create(
        exception=exception,
        approver=people["approver"],
        requester=people["engineer"],
        decided_at=T0,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ExceptionApproval.objects.create(
            exception=exception,
            approver=people["approver"],
            requester=people["engineer"],
            decided_at=T0,
        )


def test_people_without_the_approver_role_cannot_decide(rule, people):
    exception = _request(rule, people["engineer"])
    for role in ("executive", "auditor", "engineer", "oncall"):
        with pytest.raises(ExceptionForbidden):
            exception_approve(exception=exception, approver=people[role], at=T0)


def test_a_critical_rule_needs_two_distinct_approvers(critical_rule, people, second_approver):
    exception = _request(critical_rule, people["engineer"])

    once = exception_approve(exception=exception, approver=people["approver"], at=T0)
    assert once.state == ExceptionState.REQUESTED
    with pytest.raises(ExceptionRefused):
        exception_approve(exception=exception, approver=people["approver"], at=T0)
    twice = exception_approve(exception=exception, approver=second_approver, at=T0)

    assert twice.state == ExceptionState.APPROVED
    assert twice.approvals.count() == 2
    assert [t["to"] for t in _transitions()] == ["requested", "requested", "approved"]


def test_an_approver_rejects_with_a_comment(rule, people):
    exception = _request(rule, people["engineer"])
    with pytest.raises(ExceptionRefused) as refused:
        exception_reject(exception=exception, approver=people["approver"], comment="", at=T0)
    assert refused.value.field == "comment"
    rejected = exception_reject(
        exception=exception, approver=people["approver"], comment="fix it", at=T0
    )
    assert rejected.state == ExceptionState.REJECTED
    assert rejected.decision_comment == "fix it"
    assert _transitions()[-1]["to"] == "rejected"


@pytest.mark.parametrize("reviser", ["engineer", "approver", "admin"])
def test_the_requester_or_an_approver_revokes_an_active_exception(rule, people, reviser):
    exception = _request(rule, people["engineer"])
    exception_approve(exception=exception, approver=people["approver"], at=T0)
    revoked = exception_revoke(
        exception=exception, user=people[reviser], comment="fixed", at=T0 + timedelta(days=1)
    )
    assert revoked.state == ExceptionState.REVOKED
    assert revoked.ended_at == T0 + timedelta(days=1)
    assert not exception_is_active(revoked, T0 + timedelta(days=2))


def test_someone_else_cannot_revoke(rule, people):
    exception = _request(rule, people["engineer"])
    exception_approve(exception=exception, approver=people["approver"], at=T0)
    other = make_person("other-engineer", "engineer")
    with pytest.raises(ExceptionForbidden):
        exception_revoke(exception=exception, user=other, comment="x", at=T0)


# Every (state, action) pair that is not the one allowed transition is refused.
REFUSED = [
    ("approved", "approve"),
    ("approved", "reject"),
    ("rejected", "approve"),
    ("rejected", "reject"),
    ("rejected", "revoke"),
    ("requested", "revoke"),
    ("revoked", "approve"),
    ("revoked", "reject"),
    ("revoked", "revoke"),
    ("expired", "approve"),
    ("expired", "reject"),
    ("expired", "revoke"),
]


def _in_state(rule, people, state: str) -> PolicyException:
    exception = _request(rule, people["engineer"])
    if state == "requested":
        return exception
    if state == "rejected":
        return exception_reject(exception=exception, approver=people["approver"], comment="n")
    exception_approve(exception=exception, approver=people["approver"], at=T0)
    if state == "revoked":
        return exception_revoke(
            exception=exception, user=people["engineer"], comment="done", at=T0 + timedelta(days=1)
        )
    if state == "expired":
        exceptions_expire(at=T0 + timedelta(days=8))
    return PolicyException.objects.get(pk=exception.pk)


@pytest.mark.parametrize(("state", "action"), REFUSED)
def test_transitions_outside_the_state_machine_are_refused(rule, people, state, action):
    exception = _in_state(rule, people, state)
    before = _transitions()
    admin = people["admin"]
    with pytest.raises(ExceptionRefused) as refused:
        if action == "approve":
            exception_approve(exception=exception, approver=admin)
        elif action == "reject":
            exception_reject(exception=exception, approver=admin, comment="n")
        else:
            exception_revoke(exception=exception, user=admin, comment="n")
    assert refused.value.field == "state"
    assert PolicyException.objects.get(pk=exception.pk).state == state
    assert _transitions() == before


# --- expiry ---------------------------------------------------------------------------------


def test_expiry_is_enforced_at_read_time_without_the_job(rule, people):
    exception = _request(rule, people["engineer"])
    exception_approve(exception=exception, approver=people["approver"], at=T0)
    later = T0 + timedelta(days=7, seconds=1)

    stored = PolicyException.objects.get()
    assert stored.state == ExceptionState.APPROVED  # the job has not run
    assert not exception_is_active(stored, later)
    assert stored.state_at(later) == ExceptionState.EXPIRED
    assert not PolicyException.objects.active(later).exists()
    with pytest.raises(ExceptionRefused):
        exception_revoke(exception=stored, user=people["engineer"], comment="x", at=later)


def test_the_expiry_job_marks_lapsed_exceptions_expired_once(rule, people):
    exception = _request(rule, people["engineer"])
    exception_approve(exception=exception, approver=people["approver"], at=T0)

    assert exceptions_expire(at=T0 + timedelta(days=6)) == 0
    assert exceptions_expire(at=T0 + timedelta(days=8)) == 1
    assert exceptions_expire(at=T0 + timedelta(days=9)) == 0
    stored = PolicyException.objects.get()
    assert stored.state == ExceptionState.EXPIRED
    assert stored.ended_at == T0 + timedelta(days=7)
    assert _transitions()[-1] == {"subject": "posture", "from": "approved", "to": "expired"}


def test_scope_matches_environment_service_and_resource_pattern(rule, people):
    exception = _request(rule, people["engineer"])
    assert exception_covers(
        exception, environment="prod", service="payments", resource="deployment/payments-7"
    )
    assert not exception_covers(
        exception, environment="staging", service="payments", resource="deployment/payments-7"
    )
    assert not exception_covers(
        exception, environment="prod", service="payments", resource="deployment/checkout"
    )
    anywhere = _request(rule, people["engineer"], environment="", service="", resource_pattern="")
    assert exception_covers(anywhere, environment="x", service="y", resource="z")


# --- notifications --------------------------------------------------------------------------


@pytest.fixture
def with_emails(people):
    for name, user in people.items():
        user.email = f"{name}@example.com"
        user.save(update_fields=["email"])
    return people


def test_notices_go_to_approvers_then_the_requester_after_commit(
    rule, with_emails, django_capture_on_commit_callbacks
):
    people = with_emails
    with django_capture_on_commit_callbacks(execute=True):
        exception = exception_request(
            rule=rule, requester=people["engineer"], justification="why", duration_days=5
        )
    assert [m.to for m in mail.outbox] == [["approver@example.com"]]
    assert "requested" in mail.outbox[0].subject

    with django_capture_on_commit_callbacks(execute=True):
        exception_approve(exception=exception, approver=people["approver"], comment="ok")
    assert mail.outbox[-1].to == ["engineer@example.com"]
    assert "approved" in mail.outbox[-1].subject


def test_a_redelivered_notice_sends_no_second_mail(rule, with_emails):
    exception = _request(rule, with_emails["engineer"])
    assert exception_notify(exception_id=exception.pk, kind=NotificationKind.REQUESTED)
    assert not exception_notify(exception_id=exception.pk, kind=NotificationKind.REQUESTED)
    assert len(mail.outbox) == 1
    assert ExceptionNotification.objects.count() == 1


def test_a_failed_send_is_not_recorded_so_a_retry_sends_it(rule, with_emails, settings):
    exception = _request(rule, with_emails["engineer"])
    settings.EMAIL_BACKEND = "tests.posture.test_exceptions.FailingBackend"
    with pytest.raises(OSError):
        exception_notify(exception_id=exception.pk, kind=NotificationKind.REQUESTED)
    assert not ExceptionNotification.objects.exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert exception_notify(exception_id=exception.pk, kind=NotificationKind.REQUESTED)
    assert len(mail.outbox) == 1


class FailingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("smtp is down")


def test_expiring_and_expired_notices_are_sent_once_each(
    rule, with_emails, django_capture_on_commit_callbacks
):
    people = with_emails
    exception = _request(rule, people["engineer"], duration_days=10)
    now = datetime.now(UTC)
    exception_approve(exception=exception, approver=people["approver"], at=now - timedelta(days=8))
    mail.outbox.clear()

    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            exceptions_notify_expiring(at=now)
    assert [m.subject.split(" is ")[-1] for m in mail.outbox] == ["expiring in 3 days"]

    with django_capture_on_commit_callbacks(execute=True):
        exceptions_notify_expiring(at=now + timedelta(days=1, hours=1))
        exceptions_expire(at=now + timedelta(days=3))
        exceptions_expire(at=now + timedelta(days=4))
    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 3
    assert "expiring in 1 day" in subjects[1]
    assert "expired" in subjects[2]


def test_the_beat_job_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["exceptions-expire"]
    assert entry["task"] == "posture.tasks.exceptions_expire_task"


# --- the bundle and the API -----------------------------------------------------------------


def _bundle_files(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_the_bundle_lists_exactly_the_active_exceptions(rule, people):
    now = datetime.now(UTC)
    active = _request(rule, people["engineer"], at=now)
    exception_approve(exception=active, approver=people["approver"], at=now)
    _request(rule, people["engineer"], at=now)  # pending
    lapsed = _request(rule, people["engineer"], duration_days=1, at=now)
    exception_approve(exception=lapsed, approver=people["approver"], at=now - timedelta(days=2))

    bundle = exceptions_bundle(at=now)
    files = _bundle_files(bundle.body)

    assert set(files) == {".manifest", "posture/exceptions/data.json"}
    manifest = json.loads(files[".manifest"])
    assert manifest == {"revision": bundle.revision, "roots": ["posture/exceptions"]}
    data = json.loads(files["posture/exceptions/data.json"])
    assert [item["id"] for item in data["active"]] == [active.pk]
    assert data["active"][0]["resource"] == "deployment/payments-*"


def test_the_bundle_revision_changes_on_approve_and_on_expiry(rule, people):
    now = datetime.now(UTC)
    empty = exceptions_bundle(at=now).revision
    assert exceptions_bundle(at=now).revision == empty
    exception = _request(rule, people["engineer"], duration_days=1, at=now)
    assert exceptions_bundle(at=now).revision == empty
    exception_approve(exception=exception, approver=people["approver"], at=now)
    approved = exceptions_bundle(at=now).revision
    assert approved != empty
    assert exceptions_bundle(at=now + timedelta(days=1)).revision == empty  # no job ran


@pytest.fixture
def api(people) -> dict[str, APIClient]:
    clients = {}
    for name in ("engineer", "approver", "auditor"):
        clients[name] = APIClient()
        clients[name].force_login(people[name])
    return clients


def test_the_bundle_endpoint_answers_304_to_its_etag(rule, people, source_client):
    response = source_client.get("/api/v1/exceptions/bundle.tar.gz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    etag = response["ETag"]
    assert _bundle_files(response.content)[".manifest"]

    again = source_client.get("/api/v1/exceptions/bundle.tar.gz", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304

    exception = _request(rule, people["engineer"], at=datetime.now(UTC))
    exception_approve(exception=exception, approver=people["approver"])
    changed = source_client.get("/api/v1/exceptions/bundle.tar.gz", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_the_active_endpoint_lists_active_exceptions_for_a_source(rule, people, source_client):
    exception = _request(rule, people["engineer"], at=datetime.now(UTC))
    exception_approve(exception=exception, approver=people["approver"])
    response = source_client.get("/api/v1/exceptions/active")
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["active"]] == [exception.pk]


def test_the_api_requests_approves_and_lists(rule, api):
    created = api["engineer"].post(
        "/api/v1/exceptions",
        {"rule": rule.pk, "justification": "why", "duration_days": 5, "environment": "prod"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert created.json()["state"] == "requested"

    approved = api["approver"].post(f"/api/v1/exceptions/{pk}/approve", {"comment": "ok"})
    assert approved.status_code == 200
    assert approved.json()["state"] == "approved"
    assert approved.json()["approvals"][0]["approver"] == "approver"

    listed = api["auditor"].get("/api/v1/exceptions", {"state": "approved", "team": "platform"})
    assert [item["id"] for item in listed.json()] == [pk]
    assert api["auditor"].get("/api/v1/exceptions", {"state": "rejected"}).json() == []


def test_api_validation_errors_name_the_field(rule, api):
    response = api["engineer"].post(
        "/api/v1/exceptions",
        {"rule": rule.pk, "justification": "why", "duration_days": 60},
        format="json",
    )
    assert response.status_code == 400
    assert "duration_days" in response.json()["detail"]
    missing = api["engineer"].post("/api/v1/exceptions", {"rule": rule.pk}, format="json")
    assert missing.status_code == 400
    assert {"justification", "duration_days"} <= set(missing.json()["detail"])


def test_the_api_refuses_a_self_approval_with_403(rule, people):
    both = make_person("both", "engineer", "approver")
    client = APIClient()
    client.force_login(both)
    pk = client.post(
        "/api/v1/exceptions",
        {"rule": rule.pk, "justification": "why", "duration_days": 5},
        format="json",
    ).json()["id"]
    response = client.post(f"/api/v1/exceptions/{pk}/approve", {})
    assert response.status_code == 403
    assert PolicyException.objects.get().state == ExceptionState.REQUESTED


def test_a_transition_on_the_wrong_state_is_a_400_naming_state(rule, people, api):
    exception = _request(rule, people["engineer"])
    response = api["engineer"].post(f"/api/v1/exceptions/{exception.pk}/revoke", {"comment": "x"})
    assert response.status_code == 400
    assert "state" in response.json()["detail"]


# --- pages ----------------------------------------------------------------------------------


def _page_client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_the_request_page_is_prefilled_from_a_blocked_decision(rule, people):
    response = _page_client(people["engineer"]).get(
        "/exceptions/new",
        {
            "rule": rule.pk,
            "environment": "prod",
            "service": "payments",
            "resource": "deployment/x",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form["rule"].value() == str(rule.pk)
    assert form["environment"].value() == "prod"
    assert form["resource_pattern"].value() == "deployment/x"


def test_the_request_page_shows_errors_next_to_the_field(rule, people):
    response = _page_client(people["engineer"]).post(
        "/exceptions/new", {"rule": rule.pk, "justification": "why", "duration_days": 45}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["duration_days"] == [
        "between 1 and 30 days for a high rule"
    ]
    assert 'id="id_duration_days-error"' in response.content.decode()
    assert not PolicyException.objects.exists()


def test_request_approve_and_revoke_through_the_pages(rule, people):
    created = _page_client(people["engineer"]).post(
        "/exceptions/new",
        {"rule": rule.pk, "justification": "why", "duration_days": 5, "resource_pattern": "*"},
    )
    assert created.status_code == 302
    exception = PolicyException.objects.get()
    assert created["Location"] == f"/exceptions/{exception.pk}"

    approver = _page_client(people["approver"])
    waiting = approver.get("/exceptions")
    assert list(waiting.context["waiting"]) == [exception]
    assert (
        approver.post(f"/exceptions/{exception.pk}/approve", {"comment": "ok"}).status_code == 302
    )
    page = approver.get(f"/exceptions/{exception.pk}")
    assert page.context["state"] == "approved"
    assert [step["what"] for step in page.context["timeline"]] == [
        "requested",
        "approved",
        "active",
        "expires",
    ]

    refused = _page_client(people["engineer"]).post(f"/exceptions/{exception.pk}/revoke", {})
    assert refused.status_code == 200
    assert refused.context["comment_form"].errors["comment"]
    revoked = _page_client(people["engineer"]).post(
        f"/exceptions/{exception.pk}/revoke", {"comment": "fixed"}
    )
    assert revoked.status_code == 302
    assert PolicyException.objects.get().state == ExceptionState.REVOKED


def test_the_requester_sees_no_approve_form_and_a_forged_post_is_forbidden(rule, people):
    both = make_person("both", "engineer", "approver")
    exception = _request(rule, both)
    client = _page_client(both)
    assert not client.get(f"/exceptions/{exception.pk}").context["may_decide"]
    assert client.post(f"/exceptions/{exception.pk}/approve", {}).status_code == 403


# --- counting: decisions covered by an exception are excepted --------------------------------


def test_covered_decisions_count_as_excepted_and_a_rebuild_agrees(rule, people, source_client):
    from posture.exceptions import exception_used
    from posture.models import DecisionHourly
    from posture.rollups import rollups_apply_all, rollups_rebuild
    from tests.conftest import event, post_events
    from tests.posture.factories import rollups_snapshot

    start = datetime(2026, 11, 1, tzinfo=UTC)
    waiver = _request(
        rule,
        people["engineer"],
        environment="",
        resource_pattern="deployment/payments-1*",
        at=start,
    )
    waiver = exception_approve(exception=waiver, approver=people["approver"], at=start)
    # Covered: payments-1 and payments-10..19, in the period; not covered: the others.
    response = post_events(source_client, [event(n) for n in range(1, 31)])
    assert response.status_code == 201
    rollups_apply_all()

    rows = DecisionHourly.objects.filter(rule=rule)
    assert sum(row.excepted for row in rows) == 11
    assert sum(row.decisions for row in rows) == 30
    assert exception_used(waiver) == 11

    incremental = rollups_snapshot()
    rollups_rebuild()
    assert rollups_snapshot() == incremental


def test_decisions_after_a_revocation_are_not_excepted(rule, people, source_client):
    from posture.models import DecisionHourly
    from posture.rollups import rollups_apply_all
    from tests.conftest import event, post_events

    start = datetime(2026, 11, 1, tzinfo=UTC)
    waiver = _request(rule, people["engineer"], environment="", resource_pattern="*", at=start)
    exception_approve(exception=waiver, approver=people["approver"], at=start)
    exception_revoke(
        exception=waiver, user=people["engineer"], comment="x", at=start + timedelta(seconds=10)
    )
    post_events(source_client, [event(n) for n in range(1, 21)])
    rollups_apply_all()

    assert sum(row.excepted for row in DecisionHourly.objects.filter(rule=rule)) == 9


def test_an_excepted_decision_left_unenforced_is_no_enforcement_failure(
    rule, people, source_client
):
    from posture.rollups import rollups_apply_all
    from posture.selectors import SliScope, Window, slis_report
    from tests.conftest import event, post_events

    start = datetime(2026, 11, 1, tzinfo=UTC)
    waiver = _request(
        rule, people["engineer"], environment="", resource_pattern="deployment/payments-1", at=start
    )
    exception_approve(exception=waiver, approver=people["approver"], at=start)
    # Ten enforced decisions; the waived resource's deny was let through (not enforced).
    events = [event(n) for n in range(2, 11)]
    events.append(event(1, outcome="deny", enforced=False))
    post_events(source_client, events)
    rollups_apply_all()

    window = Window(start=start, end=start + timedelta(days=1), unit="day")
    report = slis_report(window=window, scope=SliScope())
    m2 = next(f for f in report.figures if f["sli"] == "M2")
    m3 = next(f for f in report.figures if f["sli"] == "M3")
    # 9 of 9 enforced once the excepted one is left out; denies 3, 6, 9 (1 is excepted).
    assert (m2["numerator"], m2["denominator"]) == (9, 9)
    assert (m3["numerator"], m3["denominator"]) == (3, 10)
