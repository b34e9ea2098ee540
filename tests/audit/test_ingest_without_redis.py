"""Ingest depends on the database alone: it succeeds while the task broker is down."""

import pytest
from kombu.exceptions import OperationalError

from audit.models import Event
from audit.tasks import ledger_verify_task
from posture.celery import app as celery_app
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down(monkeypatch):
    # Nothing listens on port 1: every attempt to reach this broker fails at once.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(celery_app.conf, "broker_connection_retry", False)
    monkeypatch.setitem(celery_app.conf, "broker_connection_max_retries", 0)
    monkeypatch.setitem(celery_app.conf, "task_publish_retry", False)
    # Connections pooled earlier in this process point at the old broker: start afresh.
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)


def test_events_are_stored_while_the_broker_is_down(broker_down, source_client):
    # The broker really is unreachable: anything sent to it fails.
    with pytest.raises(OperationalError):
        ledger_verify_task.delay(None)

    response = post_events(source_client, [event(n) for n in range(1, 4)])

    assert response.status_code == 201, response.content
    assert Event.objects.count() == 3


def test_a_verification_request_says_when_the_queue_is_down(broker_down, source_client, people):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(people["auditor"])

    response = client.post("/api/v1/ledger/verify")

    assert response.status_code == 503
    assert "queue" in response.json()["detail"]
