"""The published JSON Schema and the ingest validator agree (no database)."""

import jsonschema
import orjson
import pytest

from audit.api.views import EVENT_SCHEMA_PATH
from audit.events import EventError, validate_event
from tests.audit.test_ingest_rejects import BAD_EVENTS
from tests.conftest import event

SCHEMA = orjson.loads(EVENT_SCHEMA_PATH.read_bytes())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

VALID = {
    "decision with every core field": event(
        1,
        policy_version="bundle-42",
        source_seq=7,
        source_epoch="boot-1",
        environment="prod",
        namespace="payments",
        subject="system:serviceaccount:ci",
        action="CREATE",
        reason="label team is missing",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        attributes={"cluster": "eu-1", "nested": {"list": [1, 2.5, None]}},
        occurred_at="2026-11-25T10:00:00.123456789+02:00",
    ),
    "violation": {
        "event_id": "v-1",
        "kind": "violation",
        "occurred_at": "2026-11-25T10:00:00Z",
        "detected_at": "2026-11-25T10:03:00Z",
        "rule": "disallow-privileged",
        "severity": "critical",
        "status": "open",
    },
    "remediation": {
        "event_id": "r-1",
        "kind": "remediation",
        "occurred_at": "2026-11-25T10:00:00Z",
        "rule": "restrict-host-path",
        "status": "failed",
    },
    "heartbeat": {
        "event_id": "h-1",
        "kind": "heartbeat",
        "occurred_at": "2026-11-25T10:00:00Z",
        "interval_seconds": 60,
        "emitted_total": 1000,
        "dropped_total": 2,
    },
    "policy deployment": {
        "event_id": "p-1",
        "kind": "policy_deployment",
        "occurred_at": "2026-11-25T10:20:00Z",
        "committed_at": "2026-11-25T10:00:00Z",
        "policy": "kubernetes.admission",
        "policy_version": "abc123",
    },
    "inventory": {
        "event_id": "i-1",
        "kind": "inventory",
        "occurred_at": "2026-11-25T10:00:00Z",
        "resources_total": 120,
        "resources_covered": 111,
    },
}

# Rules JSON Schema cannot state: calendar validity and range, sizes in bytes, nesting depth,
# and one field compared with another. The validator enforces them; the schema documents them.
NOT_EXPRESSIBLE = {
    "impossible date",
    "attributes too big",
    "attributes nested too deep",
    "inventory covered above total",
    "time after year 9999 in UTC",
    "time on 9999-12-31 in UTC",
    "deployment committed on 9999-12-31",
    "time before year 1 in UTC",
}


@pytest.mark.parametrize("name", VALID)
def test_valid_events_pass_both(name):
    assert not isinstance(validate_event(VALID[name], 0, default_environment=""), EventError)
    VALIDATOR.validate(VALID[name])


@pytest.mark.parametrize("name", BAD_EVENTS)
def test_invalid_events_fail_both(name):
    bad = BAD_EVENTS[name][0]

    assert isinstance(validate_event(bad, 0, default_environment=""), EventError)
    if name not in NOT_EXPRESSIBLE:
        assert not VALIDATOR.is_valid(bad), f"the schema accepts {name}"
