"""The on-call dashboard: panels from the last hours, problems first, polled every 30 s."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit.models import Event
from audit.services import source_create, source_token_create
from posture import selectors_oncall as oncall
from posture.models import Rule, SloTarget
from posture.rollups import rollups_apply_all, slot_seconds
from posture.selectors import Target, window_last
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_role(people):
    def client_for(role: str) -> Client:
        client = Client()
        client.force_login(people[role])
        return client

    return client_for


def ago(**delta) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def source_client_for(name: str, kind: str) -> APIClient:
    source = source_create(name=name, kind=kind, environment="staging")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {source_token_create(source=source)[1]}")
    return client


@pytest.fixture
def incidents(source_client) -> None:
    """opa-prod denies half of its decisions and lost two events; kyverno-staging went quiet
    two hours ago, after remediating one deployment again and again and failing another."""
    decisions = []
    for n in range(1, 21):
        if n in (7, 8):
            continue  # never arrived: a gap in the source's own sequence numbers
        decisions.append(
            event(
                n,
                occurred_at=ago(minutes=50 - 2 * n),
                outcome="deny" if n % 2 else "allow",
                source_seq=n,
                reason="missing label team" if n % 4 == 1 else "image not signed",
            )
        )
    decisions.append({"event_id": "hb-1", "kind": "heartbeat", "occurred_at": ago(minutes=1)})
    post_events(source_client, decisions)

    kyverno = source_client_for("kyverno-staging", "kyverno")
    items = [{"event_id": "hb-k", "kind": "heartbeat", "occurred_at": ago(hours=2)}]
    for n in range(4):
        items.append(
            {
                "event_id": f"rem-{n}",
                "kind": "remediation",
                "occurred_at": ago(minutes=170 - 12 * n),
                "status": "succeeded",
                "rule": "require-labels",
                "resource": "deployment/search-indexer",
            }
        )
    items.append(
        {
            "event_id": "rem-failed",
            "kind": "remediation",
            "occurred_at": ago(minutes=150),
            "status": "failed",
            "rule": "require-labels",
            "resource": "deployment/billing",
        }
    )
    items += [
        event(100 + n, event_id=f"k-{n}", occurred_at=ago(minutes=130 + n), latency_ms=900)
        for n in range(5)
    ]
    post_events(kyverno, items)
    rollups_apply_all()


def test_the_dashboard_shows_every_panel(as_role, incidents):
    response = as_role("oncall").get("/dashboards/oncall")

    body = response.content.decode()
    assert response.status_code == 200
    for heading in (
        "Needs attention",
        "Deny rate and its error budget",
        "What is denied",
        "Decision latency by source",
        "Engines and heartbeats",
        "Audit completeness",
        "Failed remediations and remediation loops",
    ):
        assert heading in body
    for chart in ("chart-deny-5m", "chart-top-rules", "chart-top-services", "chart-deny-reasons"):
        assert f'data-figure="{chart}"' in body
    assert "chart-latency" in body
    assert 'hx-trigger="every 30s, refresh"' in body
    assert "<script>" not in body  # data only: CSP forbids inline code


def test_problems_are_listed_worst_first(as_role, incidents):
    body = as_role("engineer").get("/dashboards/oncall").content.decode()
    attention = body[body.index("Needs attention") : body.index('id="deny-rate"')]

    titles = [
        "Deny rate burning its error budget (page)",
        "No heartbeat from kyverno-staging",
        "Slow decisions on kyverno-staging",
        "Events lost from opa-prod",  # 2 of 20: far below the 99.9 % target
        "Remediation loop on deployment/search-indexer",
        "Remediation failures on deployment/billing",
    ]
    for title in titles:
        assert title in attention
    critical = [attention.index(t) for t in titles[:4]]
    warnings = [attention.index(t) for t in titles[4:]]
    assert max(critical) < min(warnings)
    assert "No heartbeat from opa-prod" not in attention


def test_the_panels_alone_are_what_the_page_polls(as_role, incidents):
    response = as_role("admin").get("/dashboards/oncall/panels?hours=24")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'hx-get="/dashboards/oncall/panels?hours=24"' in body
    assert "chart-deny-hourly" in body  # beyond 6 hours, the hours come from the rollups


def test_choosing_a_window_through_htmx_swaps_the_panels(as_role, incidents):
    response = as_role("oncall").get("/dashboards/oncall?hours=72", **HTMX)

    body = response.content.decode()
    assert "<html" not in body
    assert "last 72 hours" in body
    assert 'hx-get="/dashboards/oncall/panels?hours=72"' in body


def test_an_unknown_window_falls_back_to_six_hours(as_role, incidents):
    body = as_role("oncall").get("/dashboards/oncall?hours=5000").content.decode()

    assert "last 6 hours" in body
    assert "chart-deny-hourly" not in body


def test_bars_link_to_the_rule_and_to_the_denies(as_role, incidents):
    rule = Rule.objects.get(policy="kubernetes.admission", name="require-labels")

    body = as_role("oncall").get("/dashboards/oncall").content.decode()

    assert f'"customdata": ["/rules/{rule.pk}"]' in body
    assert f'<a href="/rules/{rule.pk}">kubernetes.admission/require-labels</a>' in body
    assert "/events?kind=decision&amp;outcome=deny" in body or "outcome=deny" in body


def test_an_empty_estate_says_what_to_do(as_role):
    body = as_role("oncall").get("/dashboards/oncall").content.decode()

    assert "No denies in the last 6 hours" in body
    assert "No engines connected yet" in body
    assert "python manage.py create_source" in body
    assert "Nothing needs attention" in body


def test_the_dashboard_makes_a_bounded_number_of_queries(
    as_role, incidents, django_assert_max_num_queries
):
    client = as_role("oncall")

    # session, user, roles, targets, 5-minute buckets, hours, rules, services, reasons,
    # latency, sources, three for heartbeats (recent ones; the newest day and hour of the
    # stale), sequences, remediations
    with django_assert_max_num_queries(16):
        assert client.get("/dashboards/oncall?hours=72").status_code == 200
    with django_assert_max_num_queries(15):
        assert client.get("/dashboards/oncall/panels").status_code == 200


# ---------------------------------------------------------------------------------------------
# The reads behind it


def test_deny_buckets_fold_minutes_into_five_minute_buckets(source_client):
    now = datetime(2026, 11, 25, 12, 2, 30, tzinfo=UTC)
    post_events(
        source_client,
        [
            event(1, occurred_at="2026-11-25T12:00:10+00:00", outcome="deny"),
            event(2, occurred_at="2026-11-25T12:01:10+00:00", outcome="allow"),
            event(3, occurred_at="2026-11-25T11:59:59+00:00", outcome="deny"),
            event(4, occurred_at="2026-11-25T05:59:00+00:00", outcome="deny"),  # too old
        ],
    )

    buckets = oncall.deny_buckets(now=now)

    assert len(buckets) == 72
    assert buckets[-1].start == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert (buckets[-1].decisions, buckets[-1].denies) == (2, 1)
    assert (buckets[-2].decisions, buckets[-2].denies) == (1, 1)
    assert sum(b.decisions for b in buckets) == 3


def test_burn_rates_treat_the_deny_target_as_a_budget():
    start = datetime(2026, 11, 25, tzinfo=UTC)
    buckets = [oncall.DenyBucket(start, 100, 1) for _ in range(60)]
    buckets += [oncall.DenyBucket(start, 100, 80) for _ in range(12)]  # the last hour: 80 %

    burn = oncall.deny_burn(buckets, target=Target(0.05, "at_most", "org", ""))

    assert burn.rates["1h"] == pytest.approx(16.0)  # 80 % / 5 %
    assert burn.rates["5m"] == pytest.approx(16.0)
    assert burn.alert == "page"
    assert burn.deny_rate_1h == pytest.approx(0.8)


def test_without_a_target_there_is_no_burn_rate():
    start = datetime(2026, 11, 25, tzinfo=UTC)
    burn = oncall.deny_burn([oncall.DenyBucket(start, 10, 5)] * 72, target=None)

    assert burn.alert == "no data"
    assert set(burn.rates.values()) == {None}
    assert burn.deny_rate_1h == 0.5


def test_the_org_deny_target_comes_from_the_slo_targets(incidents):
    SloTarget.objects.filter(sli="M3", scope="org").update(target=0.9)
    now = datetime.now(UTC)

    report = oncall.oncall_report(window=window_last(hours=6, now=now), now=now)

    assert report.burn.target == 0.9
    assert report.burn.alert == "ok"  # 50 % denies against a 90 % allowance


def test_engines_that_never_sent_a_heartbeat_are_noted_not_alarmed(source):
    heartbeats = oncall.engine_heartbeats(now=datetime.now(UTC))

    assert [(h.source, h.level, h.age) for h in heartbeats] == [("opa-prod", "info", "never")]


def test_a_silent_engine_is_missing_since_the_slot_of_its_last_heartbeat(incidents):
    now = datetime.now(UTC)
    sent = Event.objects.get(event_id="hb-k").occurred_at

    (kyverno,) = [h for h in oncall.engine_heartbeats(now=now) if h.source == "kyverno-staging"]

    assert kyverno.level == "critical"
    # Older than twice its interval, so read from the rollups: the start of its slot.
    assert not kyverno.exact
    slot = timedelta(seconds=slot_seconds(kyverno.interval_seconds))
    assert sent - slot < kyverno.last_seen <= sent


def test_a_remediation_loop_needs_three_remediations_of_one_resource(incidents):
    now = datetime.now(UTC)
    problems = oncall.remediation_problems(window=window_last(hours=6, now=now))

    loop = next(p for p in problems if p.resource == "deployment/search-indexer")
    assert (loop.total, loop.failed, loop.loop, loop.level) == (4, 0, True, "warning")
    failed = next(p for p in problems if p.resource == "deployment/billing")
    assert (failed.total, failed.failed, failed.loop) == (1, 1, False)


def test_completeness_gaps_count_the_missing_sequence_numbers(incidents):
    now = datetime.now(UTC)
    gaps = oncall.completeness_gaps(window=window_last(hours=6, now=now), target=None)

    assert [(g.source, g.missing, g.expected) for g in gaps] == [("opa-prod", 2, 20)]


def test_top_deny_reasons_count_the_newest_denies(incidents):
    now = datetime.now(UTC)
    reasons = oncall.top_deny_reasons(window=window_last(hours=6, now=now))

    assert reasons.sampled == Event.objects.filter(outcome="deny").count()
    assert dict(reasons.counts) == {
        "missing label team": 5,
        "image not signed": 4,
        "(no reason given)": 1,  # kyverno-staging's deny
    }
