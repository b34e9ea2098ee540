"""Events on the first and last days the ledger accepts are counted like any other (the daily
rollups end a day at the next midnight, so the last day ingest accepts is 9999-12-30; the
refusals are in tests/audit/test_ingest_rejects.py)."""

import pytest

from audit.canonical import canonical_json
from audit.events import EventRecord, typed_columns
from audit.services import ledger_append_batch
from audit.verify import ledger_verify
from posture.models import DecisionDaily, DecisionHourly
from posture.rollups import rollups_apply, rollups_rebuild
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("occurred_at", ["9999-12-30T23:30:00Z", "0001-01-01T00:10:00Z"])
def test_an_event_on_the_first_or_last_day_is_counted(source, source_client, occurred_at):
    response = post_events(source_client, [event(1, occurred_at=occurred_at), event(2)])
    assert response.status_code == 201, response.json()

    rollups_apply(source_id=source.pk)
    assert sum(DecisionHourly.objects.values_list("decisions", flat=True)) == 2
    assert sum(DecisionDaily.objects.values_list("decisions", flat=True)) == 2

    assert rollups_rebuild() == 2
    assert sum(DecisionHourly.objects.values_list("decisions", flat=True)) == 2
    assert sum(DecisionDaily.objects.values_list("decisions", flat=True)) == 2


def test_a_stored_time_on_the_last_day_still_verifies(source):
    # Ingest refuses 9999-12-31 (the rollups cannot end that day), but an earlier version took
    # it: such a stored event is read back and verified like any other.
    stored = event(1, occurred_at="9999-12-31T10:00:00Z")
    record = EventRecord(stored["event_id"], canonical_json(stored), tuple(typed_columns(stored)))
    ledger_append_batch(source=source, records=[record])

    report = ledger_verify(source_name=source.name)
    assert report.ok, report.as_dict()
