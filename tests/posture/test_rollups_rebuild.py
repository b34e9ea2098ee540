"""Rollups rebuilt from the ledger equal the rollups kept incrementally (property tests).

Each example generates an estate (tests/posture/factories.py), ingests it batch by batch
through the real ingest service with the rollups kept after each commit, as in production,
then compares every rollup table, all columns but row ids, with a rebuild. Each example runs
in a savepoint rolled back at its end.
"""

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from audit.models import ChainHead, Event, Source
from posture.models import ViolationEpisode
from posture.rollups import (
    RollupLag,
    rollup_lag,
    rollups_apply,
    rollups_apply_all,
    rollups_rebuild,
)
from tests.conftest import event, post_events, violation
from tests.posture.factories import (
    DAYS,
    T0,
    estate_generate,
    estate_ingest,
    estate_sources,
    in_savepoint,
    rollups_snapshot,
)

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    # The database fixture is per test, not per example: each example rolls its data back.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No shrinking: every attempt ingests a whole estate again, and shrinking a seed says
    # little. A failure prints its seed (and since), which reproduce it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
sizes = st.integers(min_value=1, max_value=2)
# A time inside the data, in any offset: the rebuild takes it back to its UTC midnight.
sinces = st.builds(
    lambda minutes, hours: (T0 + timedelta(minutes=minutes)).astimezone(
        timezone(timedelta(hours=hours))
    ),
    st.integers(min_value=0, max_value=DAYS * 24 * 60 - 1),
    st.sampled_from((0, 2, -5)),
)


def assert_same(actual: dict, expected: dict) -> None:
    for table in expected:
        assert actual[table] == expected[table], f"{table} differs"


@PROPERTY
@given(seed=seeds, size=sizes, since=sinces)
def test_a_rebuild_gives_exactly_the_incremental_numbers(seed, size, since):
    rng = random.Random(seed)
    estate = estate_generate(rng, size=size)

    def check():
        sources = estate_sources(estate)
        estate_ingest(estate, rng, sources)
        incremental = rollups_snapshot()
        assert incremental["DecisionHourly"], "the estate has decisions"

        assert rollups_rebuild(since=since) == Event.objects.count()
        assert_same(rollups_snapshot(), incremental)

        assert rollups_rebuild() == Event.objects.count()
        assert_same(rollups_snapshot(), incremental)

    in_savepoint(check)


@settings(PROPERTY, max_examples=10)  # the simplest of the three
@given(seed=seeds)
def test_applying_again_counts_nothing_twice(seed):
    rng = random.Random(seed)
    estate = estate_generate(rng)

    def check():
        sources = estate_sources(estate)
        estate_ingest(estate, rng, sources)
        counted = rollups_snapshot()

        for source in Source.objects.all():
            assert rollups_apply(source_id=source.pk) == 0
        assert rollups_apply_all() == 0
        # A retried batch stores nothing new and so counts nothing new.
        estate_ingest(estate, rng, sources, sends=slice(0, 3), labels=False)

        assert_same(rollups_snapshot(), counted)
        assert rollup_lag().events_behind == 0

    in_savepoint(check)


@PROPERTY
@given(seed=seeds, behind_from=st.floats(min_value=0, max_value=1), chunk=st.integers(1, 50))
def test_batches_ingested_while_rollups_are_behind_are_caught_up(seed, behind_from, chunk):
    rng = random.Random(seed)
    estate = estate_generate(rng)
    cut = int(len(estate.sends) * behind_from)

    def check():
        sources = estate_sources(estate)
        estate_ingest(estate, rng, sources, sends=slice(0, cut))
        counted = Event.objects.count()
        # The broker is down: the enqueues after these commits are lost.
        estate_ingest(estate, rng, sources, sends=slice(cut, None), apply=False)
        behind = Event.objects.count() - counted
        assert rollup_lag().events_behind == behind

        # One source caught up by the task in small chunks, the rest by the periodic job.
        first = sorted(sources.values(), key=lambda s: s.pk)[0]
        head = ChainHead.objects.get(source=first).seq
        done = rollups_apply(source_id=first.pk, chunk=chunk)
        assert rollups_apply_all() == behind - done
        assert rollup_lag() == RollupLag(events_behind=0, seconds_behind=0.0)
        assert first.rollup_cursor.seq == head
        caught_up = rollups_snapshot()

        rollups_rebuild()
        assert_same(rollups_snapshot(), caught_up)

    in_savepoint(check)


def test_a_rebuild_from_a_day_of_decisions_alone_keeps_the_earlier_episodes(source, source_client):
    # A range whose events from `since` on are all decisions: the violation before it still
    # opens its episode, which a rebuild recounts whole.
    opened = violation(1, resource="deployment/payments")
    later = datetime(2026, 11, 3, tzinfo=UTC)
    decisions = [event(n, occurred_at=(later + timedelta(seconds=n)).isoformat()) for n in (2, 3)]
    response = post_events(source_client, [opened, *decisions])
    assert response.status_code == 201, response.json()
    rollups_apply(source_id=source.pk)
    counted = rollups_snapshot()
    assert ViolationEpisode.objects.filter(resolved_at=None).count() == 1

    assert rollups_rebuild(since=later) == 3
    assert_same(rollups_snapshot(), counted)
