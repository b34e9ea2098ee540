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
