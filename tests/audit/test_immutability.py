"""The database itself refuses to change ledger rows, whoever asks."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import Checkpoint, Event
from audit.services import checkpoint_create
from tests.conftest import event, post_events, raw_execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(source_client):
    post_events(source_client, [event(n) for n in range(1, 4)])
    return Event.objects.order_by("seq").first()


def refused(action) -> bool:
    try:
        with transaction.atomic():
            action()
    except DatabaseError as error:
        return "append-only" in str(error)
    return False


def test_orm_update_of_one_event_is_refused(stored):
    stored.outcome = "deny"
    assert refused(stored.save)
    assert Event.objects.get(pk=stored.pk).outcome == "allow"


def test_orm_bulk_update_is_refused(stored):
    assert refused(lambda: Event.objects.update(outcome="allow"))
    assert Event.objects.filter(outcome="allow").count() == 2


def test_orm_delete_is_refused(stored):
    assert refused(stored.delete)
    assert refused(lambda: Event.objects.all().delete())
    assert Event.objects.count() == 3


def test_raw_sql_update_and_delete_are_refused(stored):
    assert refused(lambda: raw_execute("UPDATE audit_event SET reason = 'x'"))
    assert refused(lambda: raw_execute("DELETE FROM audit_event WHERE seq = 3"))
    assert Event.objects.count() == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
@pytest.mark.django_db(transaction=True)
def test_truncate_is_refused_on_postgresql(stored):
    # Committed rows: inside a test transaction PostgreSQL refuses TRUNCATE for another reason.
    assert refused(lambda: raw_execute("TRUNCATE audit_event CASCADE"))
    assert Event.objects.count() == 3


def test_checkpoints_cannot_be_changed_or_deleted(stored):
    checkpoint = checkpoint_create()

    assert refused(lambda: Checkpoint.objects.update(signature="forged"))
    assert refused(lambda: raw_execute("DELETE FROM audit_checkpoint"))
    assert Checkpoint.objects.get().signature == checkpoint.signature
