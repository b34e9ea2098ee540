import pytest
from rest_framework.test import APIClient

from audit.models import VerificationRun
from tests.audit.test_tamper_detection import guards_off
from tests.conftest import event, post_events, raw_execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor_client(people) -> APIClient:
    client = APIClient()
    client.force_login(people["auditor"])
    return client


def test_get_runs_a_first_verification_and_reports_it(source_client, auditor_client):
    post_events(source_client, [event(n) for n in range(1, 6)])

    response = auditor_client.get("/api/v1/ledger/verify")
    again = auditor_client.get("/api/v1/ledger/verify")

    assert response.status_code == 202  # started as a task, which ran inline here
    assert again.status_code == 200
    assert again.json()["id"] == response.json()["id"]
    body = response.json()
    assert body["status"] == "passed"
    assert body["result"]["ok"] is True
    assert body["result"]["events_checked"] == 5
    assert VerificationRun.objects.count() == 1


def test_post_starts_a_new_run_that_finds_tampering(
    source_client, auditor_client, django_capture_on_commit_callbacks
):
    post_events(source_client, [event(n) for n in range(1, 6)])
    auditor_client.get("/api/v1/ledger/verify")
    with guards_off():
        raw_execute("UPDATE audit_event SET rule = 'other' WHERE seq = 2")

    with django_capture_on_commit_callbacks(execute=True):
        started = auditor_client.post("/api/v1/ledger/verify")
    latest = auditor_client.get("/api/v1/ledger/verify").json()

    assert started.status_code == 202
    run = auditor_client.get(f"/api/v1/ledger/verify/{started.json()['id']}").json()
    assert run["status"] == "failed"
    assert run["result"]["broken_chains"] == [
        {
            "source": "opa-prod",
            "seq": 2,
            "event_id": "evt-2",
            "problem": "rule column differs from the hashed record",
        }
    ]
    assert latest["id"] == run["id"]


def test_verify_of_an_unknown_source_is_404(auditor_client):
    assert auditor_client.get("/api/v1/ledger/verify", {"source": "nope"}).status_code == 404


def test_an_engineer_may_read_but_not_start_a_verification(source_client, people):
    client = APIClient()
    client.force_login(people["engineer"])

    assert client.get("/api/v1/ledger/verify").status_code in (200, 202)
    assert client.post("/api/v1/ledger/verify").status_code == 403
