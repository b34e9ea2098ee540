import orjson
import pytest
from django.db import connection

from audit.models import ChainHead, Event
from audit.verify import ledger_verify
from tests.conftest import event, event_count, post_events

pytestmark = pytest.mark.django_db


def test_it_stores_a_batch_and_chains_it(source_client, source):
    response = post_events(source_client, [event(n) for n in range(1, 6)])

    assert response.status_code == 201, response.content
    assert response.json()["accepted"] == 5
    assert response.json()["duplicates"] == 0
    assert list(Event.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    head = ChainHead.objects.get(source=source)
    assert head.seq == 5
    assert head.hash == Event.objects.get(seq=5).hash
    assert ledger_verify().ok


def test_it_accepts_an_events_object_and_gzip(source_client):
    response = post_events(source_client, {"events": [event(1), event(2)]}, gzipped=True)

    assert response.status_code == 201, response.content
    assert event_count() == 2


def test_it_fills_in_the_source_environment_and_keeps_the_payload(source_client):
    post_events(source_client, [event(1, attributes={"cluster": "eu-1"})])

    stored = Event.objects.get()
    assert stored.environment == "prod"
    record = orjson.loads(bytes(stored.canonical))
    assert record["event"]["attributes"] == {"cluster": "eu-1"}
    assert record["source"] == "opa-prod"
    assert record["seq"] == 1


def test_a_retried_batch_is_counted_as_duplicates(source_client):
    batch = [event(n) for n in range(1, 4)]
    post_events(source_client, batch)

    response = post_events(source_client, [*batch, event(4)])

    assert response.status_code == 201
    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 3
    assert event_count() == 4
    assert ledger_verify().ok


def test_a_fully_retried_batch_answers_200(source_client):
    batch = [event(n) for n in range(1, 4)]
    post_events(source_client, batch)

    response = post_events(source_client, batch)

    assert response.status_code == 200
    assert response.json() == response.json() | {"accepted": 0, "duplicates": 3}
    assert event_count() == 3


def test_the_same_event_twice_in_a_batch_is_stored_once(source_client):
    response = post_events(source_client, [event(1), event(1)])

    assert response.status_code == 201
    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 1


def test_a_person_can_read_events_back(source_client, people):
    post_events(source_client, [event(n) for n in range(1, 4)])
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(people["auditor"])

    response = client.get("/api/v1/events", {"outcome": "deny"})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["event_id"] for r in results] == ["evt-3"]
    assert results[0]["payload"]["rule"] == "require-labels"


def test_received_at_never_goes_back_along_a_chain(source_client):
    for batch in range(3):
        post_events(source_client, [event(batch * 10 + n) for n in range(5)])

    times = list(Event.objects.order_by("seq").values_list("received_at", flat=True))

    assert times == sorted(times)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_the_statements_of_each_batch_are_prepared_on_the_server(source_client):
    for n in range(1, 8):
        assert post_events(source_client, [event(n)]).status_code == 201

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]

    for part in ("t.token_hash = $1", "FROM audit_chainhead", "UPDATE audit_chainhead"):
        assert any(part in statement for statement in prepared), (part, prepared)
