import io
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import TestCase

from audit.demo import (
    DEMO_SOURCES,
    MAX_BATCH,
    Scenarios,
    demo_batches,
    demo_events,
    demo_scenarios,
)
from audit.events import SOURCE_KINDS, parse_timestamp, validate_batch
from audit.models import ChainHead, Checkpoint, Event, Source
from audit.verify import ledger_verify
from posture.roles import ROLES, Role

pytestmark = pytest.mark.django_db

END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# A short, thin window keeps each load well under a second; every incident still fits in it.
SMALL = {"days": 4, "scale": 0.3}


@pytest.fixture(autouse=True)
def _local_demo(settings):
    settings.DEBUG = True  # as under `make demo`


def load_demo() -> str:
    out = io.StringIO()
    # What commits trigger (the rollups) runs as after a real commit.
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command(
            "load_demo",
            "--days", str(SMALL["days"]),
            "--scale", str(SMALL["scale"]),
            "--end", END.isoformat(),
            stdout=out,
        )  # fmt: skip
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    rows = output.split("Sign in at ")[1].splitlines()[2:]
    return {row.split()[0]: row.split()[1] for row in rows if row.strip()}


def by_hour(source: str, *fields: str) -> dict[datetime, list[tuple]]:
    """One source's decisions, grouped by the hour they happened in."""
    hours = defaultdict(list)
    rows = Event.objects.filter(source__name=source, kind="decision").values_list(
        "occurred_at", *fields
    )
    for occurred_at, *values in rows:
        hours[occurred_at.replace(minute=0, second=0, microsecond=0)].append(tuple(values))
    return hours


@pytest.fixture
def output() -> str:
    return load_demo()


def test_it_stores_every_kind_of_event_for_every_demo_source(output):
    stored = set(Event.objects.values_list("source__name", "kind").distinct())

    sources = {(source.name, kind) for source in DEMO_SOURCES for kind in SOURCE_KINDS}
    assert stored == sources | {("posture", "triage_label")}
    loaded = Event.objects.exclude(source__name="posture").count()
    assert f"Loaded {loaded:,} events" in output


def test_it_loads_the_catalogue_counts_rollups_and_triages_some_denies(output):
    from posture.models import DecisionDaily, Rule, TriageState

    decisions = Event.objects.filter(kind="decision").count()
    assert sum(DecisionDaily.objects.values_list("decisions", flat=True)) == decisions
    assert Rule.objects.filter(catalogued=True).count() >= 30
    assert not Rule.objects.filter(catalogued=False).exclude(name="").exists()
    labels = set(TriageState.objects.values_list("label", flat=True))
    assert labels == {"false_positive", "confirmed"}
    assert "On-call triaged" in output


def test_the_loaded_ledger_verifies(output):
    report = ledger_verify()

    assert report.ok, report.as_dict()
    assert report.chains_checked == Source.objects.count()
    assert report.events_checked == Event.objects.count()


def test_the_gateway_has_a_deny_storm(output):
    hours = by_hour(Scenarios.STORM_SOURCE, "outcome", "service")
    rates = {
        hour: sum(outcome == "deny" for outcome, _ in rows) / len(rows)
        for hour, rows in hours.items()
    }
    storm = [hour for hour, rate in rates.items() if rate > 0.5 and len(hours[hour]) >= 50]

    assert 1 <= len(storm) <= 3
    assert statistics.median(rates.values()) < 0.05
    denied = Counter(
        service for hour in storm for outcome, service in hours[hour] if outcome == "deny"
    )
    assert denied.most_common(1)[0][0] == Scenarios.STORM_SERVICE


def test_opa_latency_spikes_for_a_few_hours(output):
    medians = {
        hour: statistics.median(latency for (latency,) in rows)
        for hour, rows in by_hour(Scenarios.SPIKE_SOURCE, "latency_ms").items()
    }
    typical = statistics.median(medians.values())

    slow = [hour for hour, median in medians.items() if median > 10 * typical]
    assert 3 <= len(slow) <= 5
    assert max(slow) - min(slow) <= timedelta(hours=4)


def test_kyverno_staging_misses_heartbeats_during_its_outage(output):
    for source in DEMO_SOURCES:
        beats = list(
            Event.objects.filter(source__name=source.name, kind="heartbeat")
            .order_by("occurred_at")
            .values_list("occurred_at", flat=True)
        )
        longest = max(later - earlier for earlier, later in pairwise(beats))
        if source.name == Scenarios.OUTAGE_SOURCE:
            assert longest >= timedelta(hours=3)
        else:
            assert longest <= timedelta(seconds=source.heartbeat_interval_seconds + 2)


def test_kyverno_staging_comes_back_with_a_new_epoch(output):
    epochs = Event.objects.filter(source__name=Scenarios.OUTAGE_SOURCE).values("source_epoch")

    assert epochs.distinct().count() == 2
    assert Event.objects.filter(source__name=Scenarios.OUTAGE_SOURCE, source_seq=1).count() == 2


def test_one_deployment_is_remediated_again_and_again(output):
    remediated = Counter(
        Event.objects.filter(kind="remediation").values_list("source__name", "resource")
    )

    (source, resource), times = remediated.most_common(1)[0]
    assert (source, resource) == (Scenarios.LOOP_SOURCE, Scenarios.LOOP_RESOURCE)
    assert times >= 30


def test_demo_users_sign_in_with_the_printed_passwords(output, client):
    passwords = printed_passwords(output)

    assert sorted(passwords) == sorted(ROLES)
    assert "http://127.0.0.1:8000" in output
    for role, password in passwords.items():
        assert client.login(username=role, password=password), role
        user = get_user_model().objects.get(username=role)
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.is_superuser == user.is_staff == (role == Role.ADMIN)


def test_a_second_run_adds_no_events_and_changes_the_passwords(output, client):
    heads = list(ChainHead.objects.order_by("source_id").values_list("seq", "hash"))
    first = printed_passwords(output)

    again = load_demo()

    assert "already have events" in again
    assert list(ChainHead.objects.order_by("source_id").values_list("seq", "hash")) == heads
    assert Event.objects.count() == sum(seq for seq, _ in heads)
    second = printed_passwords(again)
    assert client.login(username=Role.AUDITOR, password=second[Role.AUDITOR])
    assert not client.login(username=Role.AUDITOR, password=first[Role.AUDITOR])


def test_it_refuses_to_reset_passwords_with_debug_off_unless_forced(settings, db):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("load_demo", "--days", "4", stdout=io.StringIO())
    assert not Event.objects.exists()


def test_the_loaded_chains_are_signed_at_once(db):
    load_demo()

    assert Checkpoint.objects.count() == 1


def test_it_refuses_a_window_shorter_than_the_story():
    with pytest.raises(CommandError, match="--days"):
        call_command("load_demo", "--days", "1", stdout=io.StringIO())


def test_every_demo_event_is_a_valid_native_event():
    for source in DEMO_SOURCES:
        events = demo_events(source, end=END, **SMALL)

        records, errors = validate_batch(events, default_environment=source.environment)

        assert errors == []
        assert len(records) == len(events)


def test_batches_fit_the_api_limit_and_keep_each_source_in_order():
    last: dict[str, tuple[str, int]] = {}
    for source, batch in demo_batches(end=END, **SMALL):
        assert 0 < len(batch) <= MAX_BATCH
        for event in batch:
            position = (event["source_epoch"], event["source_seq"])
            assert position > last.get(source.name, ("", 0))
            last[source.name] = position


def test_the_same_seed_gives_the_same_events():
    source = DEMO_SOURCES[0]

    assert demo_events(source, end=END, seed=7, **SMALL) == demo_events(
        source, end=END, seed=7, **SMALL
    )
    assert demo_events(source, end=END, seed=7, **SMALL) != demo_events(
        source, end=END, seed=8, **SMALL
    )


def test_opa_reports_dropped_events_that_leave_sequence_gaps():
    source = next(source for source in DEMO_SOURCES if source.name == Scenarios.SPIKE_SOURCE)
    events = demo_events(source, end=END, days=10)

    sent = {event["source_seq"] for event in events}
    beat = [event for event in events if event["kind"] == "heartbeat"][-1]
    missing = set(range(1, beat["source_seq"] + 1)) - sent
    assert beat["dropped_total"] == len(missing) > 0
    assert beat["emitted_total"] == beat["source_seq"]


@pytest.mark.parametrize("days", [2, 4, 30])
@pytest.mark.parametrize("hour", [0, 3, 14, 23])
def test_every_incident_falls_inside_the_window(days, hour):
    end = END.replace(hour=hour)
    scenarios = demo_scenarios(end=end, days=days)

    end_ms = int(end.timestamp() * 1000)
    for _, (start, stop) in scenarios.described():
        assert end_ms - days * 86_400_000 <= start < stop <= end_ms


def test_violations_are_sent_when_detected_and_say_when_they_began():
    source = DEMO_SOURCES[0]
    violations = [e for e in demo_events(source, end=END, **SMALL) if e["kind"] == "violation"]

    detected = [parse_timestamp(event["detected_at"]) for event in violations]
    assert detected == sorted(detected)
    assert all(
        parse_timestamp(e["occurred_at"]) <= parse_timestamp(e["detected_at"]) for e in violations
    )
    assert {event["status"] for event in violations} == {"open", "resolved"}
