"""OPA decision events → native decisions, without a database."""

import pytest

from audit.adapters.common import RecordErrors, keep_original
from audit.adapters.config import opa_rules
from audit.adapters.opa import decision_event, decision_events, status_events
from tests.adapters.conftest import fixture

LOGS = fixture("opa_decision_logs.json")


def by_id(decision_id: str) -> dict:
    return next(record for record in LOGS if record["decision_id"] == decision_id)


def test_the_documented_example_with_a_string_true_result_is_an_allow():
    event = decision_event(by_id("4ca636c1-55e4-417a-b1d8-4aceb67960d1"), rules=[])

    assert event["event_id"] == "4ca636c1-55e4-417a-b1d8-4aceb67960d1"
    assert event["outcome"] == "allow"
    assert (event["policy"], event["rule"]) == ("http.example.authz", "allow")
    assert event["policy_version"] == "W3sibCI6InN5cy9jYXRhbG9nIiwicyI6NDA3MX1d"
    assert event["source_epoch"] == "1780d507-aea2-45cc-ae50-fa153c8e4a5a"
    assert event["subject"] == "[::1]:59943"


def test_a_leading_slash_in_the_path_names_the_same_policy():
    event = decision_event(by_id("b4638167-7fcb-4bc7-9e80-31f5f87cb738"), rules=[])

    assert (event["policy"], event["rule"]) == ("system", "main")
    assert event["outcome"] == "deny"  # boolean false at an allow-style path


def test_masked_and_erased_fields_are_kept_as_opa_sent_them():
    event = decision_event(by_id("b4638167-7fcb-4bc7-9e80-31f5f87cb738"), rules=[])

    original = event["attributes"]["original"]
    assert original["input"]["password"] == "**REDACTED**"
    assert "ssn" not in original["input"]
    assert original["erased"] == ["/input/ssn"]
    assert original["masked"] == ["/input/password"]


def test_latency_trace_and_request_sequence_are_mapped():
    event = decision_event(by_id("b4638167-7fcb-4bc7-9e80-31f5f87cb738"), rules=[])

    assert event["latency_ms"] == 1.45  # the server handler, not only the query eval
    assert event["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert event["source_seq"] == 7


def test_an_object_result_gives_deny_and_its_reasons_and_keeps_unknown_fields():
    event = decision_event(by_id("0f0c2c54-4f8e-4f55-9d2b-31b2e4d3c001"), rules=[])

    assert event["outcome"] == "deny"
    assert event["reason"] == "label team is missing; image tag latest"
    assert event["policy_version"] == "common:c9;k8s:v42"
    assert event["attributes"]["original"]["x_forwarder_note"] == "an unknown top-level field"


def test_an_empty_deny_set_is_an_allow_and_a_non_empty_one_a_deny():
    empty = decision_event(by_id("0f0c2c54-4f8e-4f55-9d2b-31b2e4d3c002"), rules=[])
    full = decision_event(by_id("0f0c2c54-4f8e-4f55-9d2b-31b2e4d3c003"), rules=[])

    assert (empty["policy"], empty["rule"], empty["outcome"]) == (
        "kubernetes.admission",
        "deny",
        "allow",
    )
    assert "reason" not in empty
    assert full["outcome"] == "deny"
    assert full["reason"] == "privileged containers are not allowed"


def test_an_ad_hoc_query_without_a_path_is_named_by_its_query():
    event = decision_event(by_id("0f0c2c54-4f8e-4f55-9d2b-31b2e4d3c004"), rules=[])

    assert event["policy"] == "opa.query"
    assert event["rule"] == "data.http.example.authz.allow == true"


@pytest.mark.parametrize(
    ("result", "path", "outcome"),
    [
        (True, "authz/allow", "allow"),
        (False, "authz/allow", "deny"),
        (True, "authz/deny", "deny"),
        (False, "authz/deny", "allow"),
        ({"allowed": True, "headers": {"x": "1"}}, "envoy/authz/main", "allow"),
        ({"response": {"allowed": False}}, "k8s/main", "deny"),
        ({"deny": []}, "k8s/main", "allow"),
        ({"violations": [{"msg": "no"}]}, "k8s/main", "deny"),
        ({"headers": {}}, "envoy/authz/main", "error"),
        (42, "x/y", "error"),
    ],
)
def test_default_outcomes(result, path, outcome):
    record = {"decision_id": "d", "timestamp": "2026-11-25T10:00:00Z", "path": path}
    record["result"] = result

    assert decision_event(record, rules=[])["outcome"] == outcome


def test_an_undefined_decision_and_an_evaluation_error_are_errors():
    undefined = {"decision_id": "d1", "timestamp": "2026-11-25T10:00:00Z", "path": "a/b"}
    failed = {**undefined, "decision_id": "d2", "error": {"message": "eval_conflict_error"}}

    assert decision_event(undefined, rules=[])["outcome"] == "error"
    assert decision_event(failed, rules=[])["reason"] == "eval_conflict_error"


def test_a_decision_mapping_renames_and_reads_the_outcome_where_it_says():
    rules = opa_rules(
        {
            "opa": {
                "decisions": [
                    {"path": "kubernetes/*", "policy": "k8s", "allow_field": "verdict.ok"},
                    {
                        "path": "/kubernetes/admission/main",
                        "policy": "k8s.admission",
                        "rule": "main",
                        "deny_field": "problems",
                        "reasons_field": "problems",
                        "mode": "dry_run",
                        "enforced": False,
                        "fields": {
                            "namespace": "input.request.namespace",
                            "subject": "input.request.userInfo.username",
                            "action": "input.request.operation",
                        },
                    },
                ]
            }
        }
    )
    record = {
        **by_id("0f0c2c54-4f8e-4f55-9d2b-31b2e4d3c001"),
        "result": {"problems": ["no team label"]},
    }

    event = decision_event(record, rules=rules)

    assert (event["policy"], event["rule"], event["outcome"]) == ("k8s.admission", "main", "deny")
    assert event["reason"] == "no team label"
    assert (event["mode"], event["enforced"]) == ("dry_run", False)
    assert event["namespace"] == "payments"
    assert event["subject"] == "system:serviceaccount:ci:deployer"
    assert event["action"] == "CREATE"
    prefix = {**record, "path": "kubernetes/other", "result": {"verdict": {"ok": "true"}}}
    assert decision_event(prefix, rules=rules)["outcome"] == "allow"
    assert decision_event(prefix, rules=rules)["policy"] == "k8s"


def test_records_without_an_id_or_a_time_are_named_in_the_refusal():
    records = [LOGS[0], {"decision_id": "x", "timestamp": "yesterday"}, "not an object"]

    with pytest.raises(RecordErrors) as refused:
        decision_events(records, rules=[])

    assert [error["record"] for error in refused.value.errors] == ["[1]", "[2]"]
    assert refused.value.errors[0]["event_id"] == "x"
    assert "timestamp" in refused.value.errors[0]["errors"]


def test_an_oversized_input_is_fingerprinted_rather_than_refused():
    record = {"decision_id": "d", "input": {"blob": "x" * 40_000}, "result": True}

    kept = keep_original(record)

    assert "input" not in kept["original"]
    assert kept["original_dropped"]["input"]["bytes"] > 40_000
    assert kept["original"]["decision_id"] == "d"


def test_a_status_update_is_a_heartbeat_with_drop_counters_and_a_deployment_per_bundle():
    from datetime import UTC, datetime

    events = [
        m.event
        for m in status_events(
            fixture("opa_status.json"), received_at=datetime(2026, 11, 25, 10, 0, 6, tzinfo=UTC)
        )
    ]

    heartbeat, deployment = events
    assert heartbeat["kind"] == "heartbeat"
    assert heartbeat["occurred_at"] == "2026-11-25T10:00:06.000000Z"
    assert heartbeat["dropped_total"] == 7  # buffer (2) + rate limit (5); nd cache is no drop
    assert heartbeat["attributes"]["opa_status"]["decision_logs"]["code"] == "decision_log_error"
    assert deployment["kind"] == "policy_deployment"
    assert (deployment["policy"], deployment["policy_version"]) == ("http/example/authz", "ABC")
    assert deployment["occurred_at"] == "2026-11-25T10:00:04.500000Z"
    assert deployment["attributes"]["committed_at_known"] is False
