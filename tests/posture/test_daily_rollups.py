"""The daily tables (RuleDaily, SequenceDaily, HeartbeatDaily) hold exactly the sums of the
hourly rollups, whether kept while counting (late events and relabelled denies included) or
recounted as a rebuild and a database from before them do; two sources counting into the same
day at once on PostgreSQL both end up in it."""

import random
import threading
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

import orjson
import pytest
from django.db import connection, transaction
from django.db.models import Max, Min, Sum
from django.db.models.functions import TruncDate
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from audit.services import ingest_native, source_create
from posture.models import (
    HeartbeatDaily,
    RollupCursor,
    RuleDaily,
    SequenceDaily,
    SequenceHourly,
)
from posture.models.rollups import RULE_DAILY_COLUMNS
from posture.rollups import (
    daily_recount,
    days_with_counts,
    rollups_apply,
    sequence_days_fill,
)
from posture.selectors import (
    DAY,
    RuleCounts,
    SliScope,
    Window,
    heartbeat_days_summed,
    rule_counts_summed,
)
from tests.conftest import event
from tests.posture.factories import (
    ROLLUP_MODELS,
    estate_generate,
    estate_ingest,
    estate_sources,
    in_savepoint,
    rollups_snapshot,
)

PROPERTY = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


def test_rule_counts_flatten_into_the_columns_of_rule_daily_and_back():
    values = tuple(range(1, len(RULE_DAILY_COLUMNS) + 1))
    counts = RuleCounts.from_flat(values)

    assert counts.flat() == values
    assert counts.decisions == values[RULE_DAILY_COLUMNS.index("decisions")]
    assert counts.false_positives == values[RULE_DAILY_COLUMNS.index("false_positives")]
    assert counts.latency[0] == values[RULE_DAILY_COLUMNS.index("latency_00")]
    assert counts.ttd[-1] == values[RULE_DAILY_COLUMNS.index("violations_opened") + len(counts.ttd)]
    assert counts.lead_time[0] == values[RULE_DAILY_COLUMNS.index("lead_00")]
    # Each histogram read back is a list of its own: counts add into one, not into the other.
    other = RuleCounts.from_flat(values)
    counts.add(other)
    assert counts.flat() == tuple(2 * value for value in values)
    assert other.flat() == values


def _day_window(first, last) -> Window:
    return Window(
        start=datetime.combine(first, time.min, tzinfo=UTC),
        end=datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC),
        unit=DAY,
    )


def _assert_daily_tables_are_the_sums_of_the_hours() -> None:
    rule_days, heartbeat_days = days_with_counts()
    days = sorted(rule_days | heartbeat_days)
    assert days, "the estate counted something"
    window = _day_window(days[0], days[-1])

    summed = rule_counts_summed(window=window, scope=SliScope(), rule_ids=None)
    want = sorted((bucket.date(), rule, counts.flat()) for (bucket, rule), counts in summed.items())
    got = sorted(
        (row[0], row[1], tuple(row[2:]))
        for row in RuleDaily.objects.values_list("day", "rule_id", *RULE_DAILY_COLUMNS)
    )
    assert got == want

    want = sorted((bucket.date(), *row) for bucket, *row in heartbeat_days_summed(window=window))
    got = sorted(
        HeartbeatDaily.objects.values_list(
            "day", "source_id", "slots_seen", "dropped_min", "dropped_max", "first_hour"
        )
    )
    assert got == want

    hours = (
        SequenceHourly.objects.annotate(day=TruncDate("bucket", tzinfo=UTC))
        .values("day", "source_id", "epoch")
        .annotate(low=Min("seq_min"), high=Max("seq_max"), stored=Sum("stored"))
        .values_list("day", "source_id", "epoch", "low", "high", "stored")
    )
    got = SequenceDaily.objects.values_list(
        "day", "source_id", "epoch", "seq_min", "seq_max", "stored"
    )
    assert sorted(got) == sorted((*row[:5], int(row[5])) for row in hours)


@pytest.mark.django_db
@PROPERTY
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_daily_tables_kept_while_counting_are_the_sums_of_the_hourly_rollups(seed):
    # The estates' sends arrive out of time order across sources, with late events, and
    # triage labels on denies of earlier days.
    rng = random.Random(seed)
    estate = estate_generate(rng)

    def check():
        estate_ingest(estate, rng, estate_sources(estate))
        _assert_daily_tables_are_the_sums_of_the_hours()

    in_savepoint(check)


@pytest.mark.django_db
def test_a_database_from_before_the_daily_tables_gets_them_filled():
    rng = random.Random(7)
    estate = estate_generate(rng)

    def check():
        estate_ingest(estate, rng, estate_sources(estate))
        kept = rollups_snapshot()
        for model in (RuleDaily, SequenceDaily, HeartbeatDaily):
            model.objects.all().delete()

        # What migration posture 0007 runs.
        sequence_days_fill()
        daily_recount(*days_with_counts())

        assert rollups_snapshot() == kept
        _assert_daily_tables_are_the_sums_of_the_hours()

    in_savepoint(check)


def test_the_daily_tables_are_among_the_rollups_compared_with_a_rebuild():
    assert {RuleDaily, SequenceDaily, HeartbeatDaily} <= set(ROLLUP_MODELS)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_two_sources_counting_into_the_same_day_at_once_both_count():
    day = datetime(2026, 11, 1, tzinfo=UTC)
    sources = [source_create(name=name, kind="opa") for name in ("opa-a", "opa-b")]
    for n, source in enumerate(sources):
        events = [
            event(i, event_id=f"{source.name}-{i}", occurred_at=(day + timedelta(minutes=i + n)))
            for i in range(40)
        ]
        body = orjson.dumps(events)
        ingest_native(
            source=source, body=body, content_type="application/json", content_encoding=""
        )
    # The rollups fall behind (as with a broker down): both sources are counted again below.
    for model in ROLLUP_MODELS:
        model.objects.all().delete()
    RollupCursor.objects.update(seq=0)

    first_counted, release = threading.Event(), threading.Event()
    errors = []

    def count(source_id: int, hold: bool) -> None:
        try:
            with transaction.atomic():
                rollups_apply(source_id=source_id)
                if hold:
                    first_counted.set()
                    assert release.wait(10)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    first = threading.Thread(target=count, args=(sources[0].pk, True))
    second = threading.Thread(target=count, args=(sources[1].pk, False))
    first.start()
    assert first_counted.wait(10)
    second.start()
    second.join(1.0)
    # The second source's addition to the day's row waits for the first transaction to end,
    # then adds to what it committed.
    assert second.is_alive()
    release.set()
    first.join(10)
    second.join(10)

    assert errors == []
    row = RuleDaily.objects.get(day=day.date())
    assert row.decisions == 80
    totals = defaultdict(int)
    for (_, _rule), counts in rule_counts_summed(
        window=_day_window(day.date(), day.date()), scope=SliScope(), rule_ids=None
    ).items():
        totals["decisions"] += counts.decisions
        totals["denies"] += counts.denies
    assert (row.decisions, row.denies) == (totals["decisions"], totals["denies"])
