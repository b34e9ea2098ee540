"""Rollup rows keep the events' values exactly, whatever characters they hold (on PostgreSQL the
rollups write by COPY and by binary arrays, each with its own escaping), the sequence rollups
count only numbered events, and counting leaves the planner's settings as they were."""

import pytest
from django.db import connection, transaction

from posture.models import (
    DecisionHourly,
    SequenceDaily,
    SequenceHourly,
    ViolationEpisode,
    ViolationHourly,
)
from posture.rollups import rollups_apply
from tests.conftest import event, post_events, violation

pytestmark = pytest.mark.django_db

AWKWARD = 'a\tb\nc\\d"e,f{g} NULL \u00e9'


def test_awkward_values_are_kept_exactly(source, source_client):
    response = post_events(
        source_client, [violation(1, service=AWKWARD, resource=AWKWARD), event(2, service=AWKWARD)]
    )
    assert response.status_code == 201, response.json()

    rollups_apply(source_id=source.pk)

    assert ViolationEpisode.objects.get().resource == AWKWARD
    assert ViolationHourly.objects.get().service == AWKWARD
    assert DecisionHourly.objects.get().service == AWKWARD


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL planner setting")
@pytest.mark.parametrize("before", ["on", "off"])
def test_counting_decisions_leaves_the_planner_as_it_was(source, source_client, before):
    # The decisions are grouped with sorting turned off for that one statement (the planner
    # sorts a range it has no statistics for); whatever runs after it in the same transaction
    # must plan as before, whatever the caller had set.
    response = post_events(source_client, [event(n) for n in range(1, 6)])
    assert response.status_code == 201, response.json()

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_sort', %s, true)", [before])
        rollups_apply(source_id=source.pk)
        cursor.execute("SHOW enable_sort")
        assert cursor.fetchone() == (before,)

    assert sum(DecisionHourly.objects.values_list("decisions", flat=True)) == 5


def test_the_sequence_rollups_count_only_the_numbered_events(source, source_client):
    # One read groups the decisions and the sequence numbers together, so numbered and
    # unnumbered events of one rule, service and hour (and no epoch) share a group.
    numbered = [event(n, source_seq=n) for n in (3, 4, 7)]
    unnumbered = [event(n) for n in (1, 2, 5, 6)]
    response = post_events(source_client, [*numbered, *unnumbered])
    assert response.status_code == 201, response.json()

    rollups_apply(source_id=source.pk)

    spans = ("epoch", "seq_min", "seq_max", "stored")
    assert list(SequenceHourly.objects.values_list(*spans)) == [("", 3, 7, 3)]
    assert list(SequenceDaily.objects.values_list(*spans)) == [("", 3, 7, 3)]
    assert sum(DecisionHourly.objects.values_list("decisions", flat=True)) == 7
