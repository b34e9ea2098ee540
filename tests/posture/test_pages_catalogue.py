"""The catalogue pages: /frameworks, a framework, a control, /rules and a rule.

Who may open them is tests/posture/test_access_matrix.py; here: what they show, what an
htmx request gets, 404s, empty states, and how many queries each page makes.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext

from audit.models import Event
from posture.catalogue import catalogue_apply
from posture.models import Rule
from posture.services import triage_label
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db

# Three hours before the current hour: inside every window the pages offer, the last 24 hours
# included, whatever the time of day the tests run (yesterday noon was outside it after noon).
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
CATALOGUE = {
    "mapping_version": "pages-1",
    "rules": [
        {
            "policy": "kubernetes.admission",
            "rule": "require-labels",
            "title": "Require labels",
            "severity": "low",
            "category": "coding_standard",
            "owner_team": "platform",
            "enforcement_mode": "enforce",
            "controls": {"pci-dss-4.0": ["10.2.1.1"], "soc2-2017": ["CC8.1"]},
        },
        {
            "policy": "kubernetes.admission",
            "rule": "disallow-privileged",
            "title": "Disallow privileged pods",
            "severity": "critical",
            "category": "security",
            "owner_team": "platform-security",
            "enforcement_mode": "enforce",
            "controls": {"pci-dss-4.0": ["10.2.1.2"]},
        },
    ],
}


def at(seconds: int) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat()


def committed(call, *args, **kwargs):
    """Make a request and run what its commit triggers (the rollup enqueue), as in production."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return call(*args, **kwargs)


@pytest.fixture
def auditor(people) -> Client:
    client = Client()
    client.force_login(people["auditor"])
    return client


@pytest.fixture
def estate(source_client, people) -> dict[str, Rule]:
    """Two catalogued rules with decisions in two services, one uncatalogued rule, a policy
    deployment, and one deny triaged as a false positive."""
    catalogue_apply(document=CATALOGUE)
    events = [event(n, occurred_at=at(n)) for n in range(1, 13)]  # 3, 6, 9, 12 deny
    events += [
        event(n, occurred_at=at(n), rule="disallow-privileged", service="billing", outcome="deny")
        for n in range(13, 16)
    ]
    events += [event(16, occurred_at=at(16), policy="legacy.gate", rule="old-check")]
    events.append(
        {
            "event_id": "deploy-1",
            "kind": "policy_deployment",
            "occurred_at": at(-3600),
            "committed_at": at(-7200),
            "policy": "kubernetes.admission",
            "policy_version": "1.4.2",
            "environment": "prod",
        }
    )
    assert committed(post_events, source_client, events).status_code == 201
    deny = Event.objects.get(event_id="evt-3")
    committed(
        triage_label, event=deny, label="false_positive", note="batch job", user=people["oncall"]
    )
    return {
        "labels": Rule.objects.get(name="require-labels"),
        "privileged": Rule.objects.get(name="disallow-privileged"),
        "uncatalogued": Rule.objects.get(name="old-check"),
    }


# ---------------------------------------------------------------------------------------------
# /frameworks


def test_the_frameworks_list_links_each_framework_with_its_score(auditor, estate):
    response = auditor.get("/frameworks")

    assert response.status_code == 200
    page = response.content.decode()
    for slug in ("pci-dss-4.0", "soc2-2017", "hipaa-security"):
        assert f'href="/frameworks/{slug}?days=30"' in page
    assert "Rule mapping pages-1" in page
    assert 'data-figure="chart-framework-score"' in page
    assert "mean of control shares" in page


def test_the_frameworks_list_says_how_to_load_a_mapping_when_there_is_none(auditor):
    page = auditor.get("/frameworks").content.decode()

    assert "No rule mapping loaded" in page
    assert "load_catalogue" in page
    assert "No daily scores in these 30 days" in page
    assert "data-figure" not in page


# ---------------------------------------------------------------------------------------------
# /frameworks/<slug>


def test_a_framework_shows_its_score_formula_and_control_tree(auditor, estate):
    response = auditor.get("/frameworks/pci-dss-4.0", {"days": "7"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page
    assert 'data-figure="chart-framework-score"' in page
    assert "How the score is computed" in page
    assert "mean of control shares" in page
    # The tree: the mapped leaves and their parents, each linking to its control page.
    for code in ("10", "10.2", "10.2.1", "10.2.1.1", "10.2.1.2"):
        assert f'href="/frameworks/pci-dss-4.0/controls/{code}?days=7"' in page
    assert '<option value="7" selected>' in page


def test_a_failing_control_stands_out_in_needs_attention(auditor, estate):
    # The org targets: require-labels' one false positive of one triaged deny misses M4.
    page = auditor.get("/frameworks/pci-dss-4.0").content.decode()

    assert "Needs attention" in page
    attention = page.split('id="attention-heading"')[1].split("</section>")[0]
    assert "10.2.1.1" in attention
    assert "10.2.1.2" not in attention


def test_htmx_gets_only_the_body_of_a_framework(auditor, estate):
    response = auditor.get("/frameworks/pci-dss-4.0", {"days": "90"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page
    assert "Last 90 days" in page
    assert "HX-Request" in response["Vary"]


def test_htmx_restoring_history_gets_the_whole_page(auditor, estate):
    response = auditor.get(
        "/frameworks/pci-dss-4.0",
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )

    assert "<html" in response.content.decode()


def test_an_unknown_period_falls_back_to_30_days(auditor, estate):
    page = auditor.get("/frameworks/pci-dss-4.0", {"days": "12"}).content.decode()

    assert "Last 30 days" in page


def test_an_unknown_framework_is_404(auditor, estate):
    assert auditor.get("/frameworks/iso-27001").status_code == 404


def test_a_framework_without_mapped_rules_says_how_to_map_them(auditor):
    page = auditor.get("/frameworks/hipaa-security").content.decode()

    assert "No rules are mapped to the controls of HIPAA Security Rule" in page
    assert "load_catalogue" in page


# ---------------------------------------------------------------------------------------------
# /frameworks/<slug>/controls/<code>


def test_a_control_shows_its_path_and_rules_with_figures_and_links(auditor, estate):
    response = auditor.get("/frameworks/pci-dss-4.0/controls/10.2.1")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/frameworks/pci-dss-4.0/controls/10.2?days=30"' in page  # its parent
    assert 'href="/frameworks/pci-dss-4.0/controls/10.2.1.1?days=30"' in page  # a child
    assert f'href="/rules/{estate["labels"].pk}?days=30"' in page
    assert f'href="/rules/{estate["privileged"].pk}?days=30"' in page
    assert "misses target" in page  # require-labels: a false positive of one triaged
    assert "meets target" in page  # disallow-privileged
    # Failing rules first.
    assert page.index("Require labels") < page.index("Disallow privileged pods")
    for heading in ("Latency p95 (M1)", "Deny rate (M3)", "Time to detect p95 (M10)"):
        assert heading in page


def test_a_control_without_rules_says_how_to_map_one(auditor, estate):
    page = auditor.get("/frameworks/pci-dss-4.0/controls/1.2.1").content.decode()

    assert "No rules are mapped to 1.2.1" in page


def test_an_unknown_control_is_404(auditor, estate):
    assert auditor.get("/frameworks/pci-dss-4.0/controls/99.9").status_code == 404
    assert auditor.get("/frameworks/nope/controls/10.2.1").status_code == 404


# ---------------------------------------------------------------------------------------------
# /rules


def test_the_catalogue_lists_rules_with_owner_and_links(auditor, estate):
    response = auditor.get("/rules")

    assert response.status_code == 200
    page = response.content.decode()
    for rule in estate.values():
        assert f'href="/rules/{rule.pk}"' in page
    assert "platform-security" in page
    assert "Uncatalogued: needs an owner (" in page


def test_the_catalogue_filters_by_severity(auditor, estate):
    page = auditor.get("/rules", {"severity": "critical"}).content.decode()

    assert f'href="/rules/{estate["privileged"].pk}"' in page
    assert f'href="/rules/{estate["labels"].pk}"' not in page


def test_the_uncatalogued_view_lists_rules_that_need_an_owner(auditor, estate):
    response = auditor.get("/rules", {"uncatalogued": "on"}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert "<html" not in page
    assert f'href="/rules/{estate["uncatalogued"].pk}"' in page
    assert f'href="/rules/{estate["labels"].pk}"' not in page
    assert "needs an owner" in page


def test_filters_that_match_nothing_offer_to_clear_them(auditor, estate):
    page = auditor.get("/rules", {"category": "cost"}).content.decode()

    assert "No rules match these filters" in page


def test_an_empty_catalogue_says_where_rules_come_from(auditor):
    page = auditor.get("/rules").content.decode()

    assert "No rules yet" in page


# ---------------------------------------------------------------------------------------------
# /rules/<id>


def test_a_rule_shows_its_decisions_versions_controls_and_triage(auditor, estate):
    rule = estate["labels"]

    response = auditor.get(f"/rules/{rule.pk}")

    assert response.status_code == 200
    page = response.content.decode()
    for chart in ("decisions", "outcomes", "services", "latency"):
        assert f'data-figure="chart-rule-{chart}"' in page
    # Bars and their keyboard twins lead to the decisions in the event list.
    in_list = "/events?kind=decision&amp;policy=kubernetes.admission&amp;rule=require-labels"
    assert f"{in_list}&amp;outcome=deny&amp;since=" in page
    assert f"{in_list}&amp;service=payments&amp;since=" in page
    assert "1.4.2" in page and "current" in page  # the policy version and where it is active
    assert 'href="/frameworks/pci-dss-4.0/controls/10.2.1.1?days=30"' in page
    assert 'href="/frameworks/soc2-2017/controls/CC8.1?days=30"' in page
    assert "1 false positive" in page
    assert "batch job" in page
    assert "No exception for this rule" in page  # exceptions


def test_a_rule_by_the_hour_over_the_last_day(auditor, estate):
    response = auditor.get(f"/rules/{estate['labels'].pk}", {"days": "1"}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert "<html" not in page
    assert "Last 24 hours" in page
    assert "Decisions by outcome, per hour" in page


def test_a_rule_without_decisions_says_how_its_engine_sends_them(auditor, estate):
    rule = Rule.objects.create(policy="kubernetes.admission", name="require-probes")

    page = auditor.get(f"/rules/{rule.pk}").content.decode()

    assert "No decisions for this rule" in page
    assert '<code>rule: "require-probes"</code>' in page
    assert "Not mapped to any framework control" in page


def test_an_unknown_rule_is_404(auditor, estate):
    assert auditor.get("/rules/999999").status_code == 404


# ---------------------------------------------------------------------------------------------
# Query counts: bounded, and not growing with the rules or controls a page shows.
# (Session and user: 2; the person's roles: 1.)


@pytest.mark.parametrize(
    ("path", "most"),
    [
        ("/frameworks", 40),  # 3 frameworks x framework_status (11 each)
        ("/frameworks/pci-dss-4.0", 18),
        ("/frameworks/pci-dss-4.0?days=365", 18),
        ("/frameworks/pci-dss-4.0/controls/10.2.1", 16),
        ("/rules", 8),
        ("/rules?uncatalogued=on&severity=high", 8),
    ],
)
def test_pages_make_a_bounded_number_of_queries(
    auditor, estate, django_assert_max_num_queries, path, most
):
    with django_assert_max_num_queries(most):
        assert auditor.get(path).status_code == 200


@pytest.mark.parametrize("days", ["1", "30", "365"])
def test_a_rule_page_makes_a_bounded_number_of_queries(
    auditor, estate, django_assert_max_num_queries, days
):
    with django_assert_max_num_queries(20):
        assert auditor.get(f"/rules/{estate['labels'].pk}", {"days": days}).status_code == 200


def test_more_rules_under_a_control_cost_no_more_queries(auditor, estate):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert auditor.get("/frameworks/pci-dss-4.0/controls/10.2.1").status_code == 200
        return len(captured)

    before = queries()
    more = [
        {
            "policy": "extra",
            "rule": f"rule-{n}",
            "controls": {"pci-dss-4.0": ["10.2.1.1", "10.2.1.2"]},
        }
        for n in range(20)
    ]
    catalogue_apply(
        document={**CATALOGUE, "mapping_version": "pages-2", "rules": [*CATALOGUE["rules"], *more]}
    )

    assert queries() == before
