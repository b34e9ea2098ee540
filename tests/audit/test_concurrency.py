"""Parallel ingest into one source ends with one gap-free, verifiable chain (PostgreSQL)."""

import threading

import orjson
import pytest
from django.db import connection
from django.test import Client

from audit.models import ChainHead, Event
from audit.verify import ledger_verify
from tests.conftest import event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]

THREADS = 8
BATCHES_PER_THREAD = 5
BATCH = 50


def test_threads_ingesting_into_one_source_build_one_chain(source, source_token):
    statuses: list[int] = []
    start = threading.Barrier(THREADS)

    def send(thread: int) -> None:
        client = Client(HTTP_AUTHORIZATION=f"Bearer {source_token}")
        start.wait()
        try:
            for batch in range(BATCHES_PER_THREAD):
                first = (thread * BATCHES_PER_THREAD + batch) * BATCH
                # Every batch also repeats one event of the previous thread's batch, so that
                # duplicates race with new events.
                events = [event(n) for n in range(first, first + BATCH)] + [
                    event(max(first - 1, 0))
                ]
                response = client.post(
                    "/api/v1/events", data=orjson.dumps(events), content_type="application/json"
                )
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = THREADS * BATCHES_PER_THREAD * BATCH
    assert statuses == [201] * THREADS * BATCHES_PER_THREAD
    assert Event.objects.count() == total
    assert sorted(Event.objects.values_list("seq", flat=True)) == list(range(1, total + 1))
    assert ChainHead.objects.get(source=source).seq == total
    # Each batch's time is taken before it waits for the chain: still, it never goes back.
    received = list(Event.objects.order_by("seq").values_list("received_at", flat=True))
    assert received == sorted(received)
    report = ledger_verify()
    assert report.ok, report.as_dict()
    assert report.events_checked == total


def test_checkpoints_requested_at_once_form_one_signed_sequence(source_client):
    from audit.models import Checkpoint
    from audit.services import checkpoint_create

    post_events_batch = [event(n) for n in range(1, 11)]
    source_client.post(
        "/api/v1/events", data=orjson.dumps(post_events_batch), content_type="application/json"
    )
    failures: list[Exception] = []
    start = threading.Barrier(4)

    def sign() -> None:
        start.wait()
        try:
            for _ in range(3):
                checkpoint_create(force=True)
        except Exception as error:
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert list(Checkpoint.objects.values_list("number", flat=True)) == list(range(1, 13))
    assert ledger_verify().ok


def test_an_append_returns_once_its_commit_is_on_disk(source, monkeypatch):
    from audit import storage
    from audit.services import ingest_native

    def wal_lsn(kind: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_current_wal_{kind}_lsn()")
            return _lsn(cursor.fetchone()[0])

    # Where the WAL ends once each append has committed (its commit record and everything
    # before it, other sessions' too), read as the append turns to wait for the disk. Read
    # after it returns instead, the server's WAL may already hold other sessions' later
    # writes, which no one has asked to flush yet.
    committed: list[int] = []
    wal_flush = storage.wal_flush

    def wal_flush_after_noting_the_end() -> None:
        committed.append(wal_lsn("insert"))
        wal_flush()

    monkeypatch.setattr(storage, "wal_flush", wal_flush_after_noting_the_end)

    for n in range(5):
        result = ingest_native(
            source=source,
            body=orjson.dumps([event(n * 100 + k) for k in range(100)]),
            content_type="application/json",
            content_encoding="",
        )
        assert result.accepted == 100
        # The append commits without waiting for the disk, then waits for it: nothing it
        # wrote is still only in memory when it returns.
        assert len(committed) == n + 1
        assert wal_lsn("flush") >= committed[-1]


def test_a_batch_of_duplicates_returns_only_once_the_stored_events_are_on_disk(source):
    from django.db import transaction

    from audit.services import ingest_native

    def ingest() -> object:
        return ingest_native(
            source=source,
            body=orjson.dumps([event(k) for k in range(50)]),
            content_type="application/json",
            content_encoding="",
        )

    assert ingest().accepted == 50
    # Another append's commit that has not reached the disk yet (it commits, then flushes):
    # a retry of its batch may find every event stored before that flush.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SELECT pg_logical_emit_message(true, 'posture-test', 'pending')")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        (pending,) = cursor.fetchone()

    result = ingest()

    assert (result.accepted, result.duplicates) == (0, 50)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_flush_lsn()")
        (flushed,) = cursor.fetchone()
    assert _lsn(flushed) >= _lsn(pending)


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)
