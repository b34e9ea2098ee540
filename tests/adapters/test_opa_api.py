"""POST /api/v1/ingest/opa/logs and /opa/status: what OPA's plugins send."""

import orjson
import pytest
from rest_framework.test import APIClient

from audit.adapters.services import source_adapter_config_set
from audit.models import ChainHead, Event, Source
from audit.verify import ledger_verify
from tests.adapters.conftest import events_by_id, fixture, fixture_bytes, payload, post
from tests.conftest import event_count

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/ingest/opa/logs"
STATUS = "/api/v1/ingest/opa/status"


def test_it_stores_a_gzip_chunk_of_decision_events_in_the_sources_chain(source_client, source):
    response = post(source_client, LOGS, fixture_bytes("opa_decision_logs.json"), gzipped=True)

    assert response.status_code == 201, response.content
    assert response.json()["accepted"] == 6
    stored = events_by_id()
    assert stored["4ca636c1-55e4-417a-b1d8-4aceb67960d1"].outcome == "allow"
    assert stored["0f0c2c54-4f8e-4f55-9d2b-31b2e4d3c003"].outcome == "deny"
    assert stored["b4638167-7fcb-4bc7-9e80-31f5f87cb738"].environment == "prod"
    assert ChainHead.objects.get(source=source).seq == 6
    assert ledger_verify().ok


def test_a_requeued_chunk_stores_nothing_twice(source_client):
    chunk = fixture_bytes("opa_decision_logs.json")
    post(source_client, LOGS, chunk, gzipped=True)

    again = post(source_client, LOGS, chunk, gzipped=True)

    assert again.status_code == 200
    assert again.json() | {"accepted": 0, "duplicates": 6} == again.json()
    assert event_count() == 6
    assert ledger_verify().ok


def test_a_chunk_overlapping_a_stored_one_adds_only_the_new_decisions(source_client):
    records = fixture("opa_decision_logs.json")
    post(source_client, LOGS, records[:3], gzipped=True)

    response = post(source_client, LOGS, records, gzipped=True)

    assert response.status_code == 201
    assert (response.json()["accepted"], response.json()["duplicates"]) == (3, 3)


def test_an_empty_array_is_accepted_and_stores_nothing(source_client):
    response = post(source_client, LOGS, [], gzipped=True)

    assert response.status_code == 200
    assert response.json()["accepted"] == 0
    assert event_count() == 0


def test_a_malformed_chunk_is_refused_whole_naming_the_bad_record(source_client):
    records = fixture("opa_decision_logs.json")
    records[4] = {**records[4], "timestamp": "not a time"}

    response = post(source_client, LOGS, records, gzipped=True)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_records"
    assert body["events"] == [
        {
            "record": "[4]",
            "event_id": "0f0c2c54-4f8e-4f55-9d2b-31b2e4d3c003",
            "errors": {"timestamp": "required: an RFC 3339 time with an offset"},
        }
    ]
    assert event_count() == 0


def test_a_decision_id_too_long_for_the_ledger_is_refused(source_client):
    records = fixture("opa_decision_logs.json")[:1]
    records[0]["decision_id"] = "x" * 200

    response = post(source_client, LOGS, records)

    assert response.status_code == 400
    assert "decision_id" in response.json()["events"][0]["errors"]
    assert event_count() == 0


def test_the_stored_payload_keeps_the_original_record_with_masked_values(source_client):
    post(source_client, LOGS, fixture_bytes("opa_decision_logs.json"), gzipped=True)

    stored = payload(Event.objects.get(event_id="b4638167-7fcb-4bc7-9e80-31f5f87cb738"))

    assert stored["attributes"]["original"]["input"]["password"] == "**REDACTED**"
    assert stored["attributes"]["decision_path"] == "/system/main"
    assert stored["source_seq"] == 7


def test_a_large_input_is_stored_with_a_fingerprint_instead_of_refused(source_client):
    record = fixture("opa_decision_logs.json")[0] | {"input": {"object": "y" * 60_000}}

    response = post(source_client, LOGS, [record], gzipped=True)

    assert response.status_code == 201, response.content
    stored = payload(Event.objects.get())
    assert stored["attributes"]["original_dropped"]["input"]["bytes"] > 60_000


def test_the_sources_decision_mapping_applies(source_client, source):
    config = {"opa": {"decisions": [{"path": "system/main", "policy": "users", "rule": "read"}]}}
    source_adapter_config_set(source=Source.objects.get(pk=source.pk), config=config)

    post(source_client, LOGS, fixture_bytes("opa_decision_logs.json"), gzipped=True)

    stored = Event.objects.get(event_id="b4638167-7fcb-4bc7-9e80-31f5f87cb738")
    assert (stored.policy, stored.rule) == ("users", "read")


def test_another_sources_token_writes_to_that_sources_chain(source_client, other_client, source):
    chunk = fixture_bytes("opa_decision_logs.json")
    post(source_client, LOGS, chunk, gzipped=True)

    response = post(other_client, LOGS, chunk, gzipped=True)

    assert response.status_code == 201
    assert response.json()["accepted"] == 6  # ids are unique within a source, not across
    assert Event.objects.filter(source=source).count() == 6
    assert Event.objects.exclude(source=source).count() == 6


@pytest.mark.parametrize("path", [LOGS, STATUS])
def test_a_wrong_token_is_refused_and_nothing_is_stored(path):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer pst_not-a-real-token")

    response = post(client, path, fixture_bytes("opa_decision_logs.json"), gzipped=True)

    assert response.status_code == 401
    assert event_count() == 0


@pytest.mark.parametrize("path", [LOGS, STATUS])
def test_a_person_cannot_post_engine_records(people, path):
    client = APIClient()
    client.force_login(people["admin"])

    response = post(client, path, fixture("opa_status.json"))

    assert response.status_code == 403
    assert event_count() == 0


def test_a_status_update_records_a_heartbeat_a_deployment_and_the_drop_counters(source_client):
    response = post(source_client, STATUS, fixture("opa_status.json"))

    assert response.status_code == 201, response.content
    heartbeat = Event.objects.get(kind="heartbeat")
    deployment = Event.objects.get(kind="policy_deployment")
    assert heartbeat.source_epoch == "1780d507-aea2-45cc-ae50-fa153c8e4a5a"
    assert payload(heartbeat)["dropped_total"] == 7
    assert payload(heartbeat)["attributes"]["opa_status"]["plugins"]["bundle"] == "OK"
    assert (deployment.policy, deployment.policy_version) == ("http/example/authz", "ABC")
    assert deployment.occurred_at.isoformat() == "2026-11-25T10:00:04.500000+00:00"


def test_the_same_bundle_activation_in_later_status_updates_is_one_deployment(source_client):
    status = fixture("opa_status.json")
    post(source_client, STATUS, status)

    status["plugins"]["status"]["state"] = "NOT_READY"
    response = post(source_client, STATUS, status)

    assert response.status_code == 201
    assert Event.objects.filter(kind="heartbeat").count() == 2
    assert Event.objects.filter(kind="policy_deployment").count() == 1


def test_a_status_without_labels_is_refused(source_client):
    response = post(source_client, STATUS, {"bundles": {}})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_records"
    assert event_count() == 0


def test_metrics_count_adapter_events_like_native_ones(source_client, people):
    post(source_client, LOGS, fixture_bytes("opa_decision_logs.json"), gzipped=True)
    post(source_client, LOGS, b"{not json", gzipped=True)
    client = APIClient()
    client.force_login(people["admin"])

    text = client.get("/metrics").content.decode()

    assert 'posture_ingest_events_total{outcome="accepted",source="opa-prod"}' in text
    assert 'posture_ingest_rejected_batches_total{reason="bad_json"}' in text


def test_the_reply_is_the_native_ingest_reply(source_client, source):
    response = post(source_client, LOGS, fixture_bytes("opa_decision_logs.json"), gzipped=True)

    head = ChainHead.objects.get(source=source)
    assert orjson.loads(response.content) == {
        "accepted": 6,
        "duplicates": 0,
        "first_seq": 1,
        "last_seq": 6,
        "head": {"seq": 6, "hash": head.hash},
    }
