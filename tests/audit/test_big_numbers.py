"""Numbers JSON allows but a float cannot hold: stored exactly, verified, counted, read back."""

import msgspec
import pytest
from django.test import TestCase
from rest_framework.test import APIClient

from audit.models import Event
from audit.verify import ledger_verify
from posture.models import DecisionHourly
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db

HUGE = 10**400  # far beyond a double; JSON has no limit


def test_huge_integers_in_attributes_are_kept_exact_and_the_ledger_verifies(source_client, people):
    attributes = {"huge": HUGE, "u64": 2**64 - 1, "large": 1e300, "tiny": 1e-300}
    with TestCase.captureOnCommitCallbacks(execute=True):
        # msgspec writes any integer (orjson, which the other tests use, stops at 64 bits).
        body = msgspec.json.encode([event(1, attributes=attributes)])
        response = post_events(source_client, body)

    assert response.status_code == 201, response.content
    stored = Event.objects.get()
    assert b'"huge":1' + b"0" * 400 + b"," in bytes(stored.canonical)
    report = ledger_verify()
    assert report.ok, report.as_dict()
    # The rollups read the stored record too.
    assert sum(DecisionHourly.objects.values_list("decisions", flat=True)) == 1
    client = APIClient()
    client.force_login(people["auditor"])
    payload = client.get(f"/api/v1/events/{stored.pk}").json()["payload"]
    assert payload["attributes"]["u64"] == 2**64 - 1


def test_a_float_beyond_a_double_is_refused(source_client):
    body = b'[{"event_id": "a", "kind": "decision", "occurred_at": "2026-11-25T10:00:00Z",'
    body += b' "rule": "r", "outcome": "allow", "attributes": {"x": 1e400}}]'

    response = post_events(source_client, body)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_json"
    assert not Event.objects.exists()
