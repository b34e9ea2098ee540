"""Validation and normalisation of native events (pure, no database).

Plain Python rather than a serializer: this runs for every event on the ingest hot path.
The JSON Schema in audit/schema/event.schema.json describes the same rules for clients;
tests/audit/test_event_schema.py keeps the two in agreement.
"""

import math
import re
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from audit.canonical import canonical_json

MAX_EVENT_ID = 128
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_ATTRIBUTES_DEPTH = 32
MAX_INT = 2**63 - 1

SOURCE_KINDS = (
    "decision",
    "violation",
    "remediation",
    "heartbeat",
    "policy_deployment",
    "inventory",
)
OUTCOMES = ("allow", "deny", "mutate", "audit", "warn", "error", "skip")
MODES = ("enforce", "dry_run", "warn")
SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = {
    "violation": ("open", "resolved"),
    "remediation": ("succeeded", "failed", "skipped"),
}

# Typed columns of audit.models.Event, in the order storage writes them and verification
# compares them. Each one is the event field of the same name.
TYPED_FIELDS = (
    "event_id",
    "kind",
    "occurred_at",
    "source_seq",
    "source_epoch",
    "policy",
    "rule",
    "policy_version",
    "outcome",
    "mode",
    "enforced",
    "latency_ms",
    "status",
    "environment",
    "service",
    "namespace",
    "resource",
    "subject",
    "action",
    "severity",
    "detected_at",
    "reason",
    "trace_id",
)
TIMESTAMP_FIELDS = frozenset({"occurred_at", "detected_at"})

STRING_LIMITS = {
    "event_id": MAX_EVENT_ID,
    "source_epoch": 128,
    "policy": 256,
    "rule": 256,
    "policy_version": 128,
    "environment": 128,
    "service": 128,
    "namespace": 128,
    "resource": 1024,
    "subject": 512,
    "action": 128,
    "reason": 4096,
}
ENUMS = {"outcome": OUTCOMES, "mode": MODES, "severity": SEVERITIES}
KIND_INTEGER_FIELDS = {
    "heartbeat": ("interval_seconds", "emitted_total", "dropped_total"),
    "inventory": ("resources_total", "resources_covered"),
}
KIND_TIMESTAMP_FIELDS = {"policy_deployment": ("committed_at",)}
CORE_FIELDS = frozenset(TYPED_FIELDS) | {"attributes"}
ALLOWED_FIELDS = {
    kind: CORE_FIELDS
    | set(KIND_INTEGER_FIELDS.get(kind, ()))
    | set(KIND_TIMESTAMP_FIELDS.get(kind, ()))
    for kind in SOURCE_KINDS
}

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


class EventRecord(NamedTuple):
    """A valid event, ready to be chained: its canonical bytes and typed column values."""

    event_id: str
    event_bytes: bytes
    columns: tuple


class EventError(NamedTuple):
    index: int
    event_id: str | None
    errors: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "event_id": self.event_id, "errors": self.errors}


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp with an offset, or None when `value` is not one."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether a JSON value nests deeper than `limit` containers (checked without recursion)."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT


def typed_value(field: str, value: object) -> object:
    """The typed column value of an event field that already passed validation."""
    if value is None:
        return None
    if field in TIMESTAMP_FIELDS:
        return parse_timestamp(value)
    if field == "latency_ms":
        return float(value)
    return value


def validate_event(
    raw: object, index: int, *, default_environment: str
) -> EventRecord | EventError:
    """Check one native event; on success give its canonical bytes and typed columns.

    The source's environment fills in a missing `environment`, so the stored event says
    where it happened.
    """
    if not isinstance(raw, dict):
        return EventError(index, None, {"event": "must be a JSON object"})
    errors: dict[str, str] = {}
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID:
        errors["event_id"] = f"required, a string of 1 to {MAX_EVENT_ID} characters"
        event_id = None
    kind = raw.get("kind")
    if kind not in SOURCE_KINDS:
        errors["kind"] = f"required, one of {', '.join(SOURCE_KINDS)}"
        allowed = CORE_FIELDS
    else:
        allowed = ALLOWED_FIELDS[kind]
    for key in raw.keys() - allowed:
        errors[str(key)[:64]] = "unknown field; put extra data under attributes"
    if None in raw.values():
        for key, value in raw.items():
            if value is None:
                errors[str(key)[:64]] = "null is not a value here; leave the field out"
    if parse_timestamp(raw.get("occurred_at")) is None:
        errors["occurred_at"] = "required, an RFC 3339 time with an offset"

    for field, limit in STRING_LIMITS.items():
        value = raw.get(field)
        if value is not None and field != "event_id":
            if not isinstance(value, str):
                errors[field] = "must be a string"
            elif len(value) > limit:
                errors[field] = f"at most {limit} characters"
    for field, choices in ENUMS.items():
        value = raw.get(field)
        if value is not None and value not in choices:
            errors[field] = f"one of {', '.join(choices)}"
    if "source_seq" in raw and not _is_int(raw["source_seq"]):
        errors["source_seq"] = "an integer from 0 to 2^63-1"
    if "enforced" in raw and not isinstance(raw["enforced"], bool):
        errors["enforced"] = "must be true or false"
    latency = raw.get("latency_ms")
    if latency is not None and (
        isinstance(latency, bool)
        or not isinstance(latency, int | float)
        or not math.isfinite(latency)
        or latency < 0
    ):
        errors["latency_ms"] = "a number of milliseconds, at least 0"
    if "detected_at" in raw and parse_timestamp(raw["detected_at"]) is None:
        errors["detected_at"] = "an RFC 3339 time with an offset"
    trace_id = raw.get("trace_id")
    if trace_id is not None and not (isinstance(trace_id, str) and _TRACE_ID.match(trace_id)):
        errors["trace_id"] = "a W3C trace id: 32 lowercase hex digits"
    if "attributes" in raw:
        attributes = raw["attributes"]
        if not isinstance(attributes, dict):
            errors["attributes"] = "must be a JSON object"
        elif _depth_exceeds(attributes, MAX_ATTRIBUTES_DEPTH):
            errors["attributes"] = f"nested at most {MAX_ATTRIBUTES_DEPTH} levels deep"
        elif len(orjson.dumps(attributes)) > MAX_ATTRIBUTES_BYTES:
            errors["attributes"] = f"at most {MAX_ATTRIBUTES_BYTES} bytes as JSON"
    _validate_kind_fields(raw, kind, errors)

    if errors:
        return EventError(index, event_id, errors)
    event = (
        raw
        if raw.get("environment") or not default_environment
        else {
            **raw,
            "environment": default_environment,
        }
    )
    columns = tuple(typed_value(field, event.get(field)) for field in TYPED_FIELDS)
    return EventRecord(event_id, canonical_json(event), columns)


def _validate_kind_fields(raw: dict, kind: object, errors: dict[str, str]) -> None:
    status = raw.get("status")
    if status is not None and status not in STATUSES.get(kind, ()):
        allowed = STATUSES.get(kind)
        errors["status"] = f"one of {', '.join(allowed)}" if allowed else f"not used by {kind}"
    if kind in ("decision", "violation") and not (raw.get("rule") or raw.get("policy")):
        errors["rule"] = f"a {kind} names its rule or policy"
    if kind == "decision" and "outcome" not in raw:
        errors["outcome"] = f"required for a decision, one of {', '.join(OUTCOMES)}"
    if kind == "violation" and "severity" not in raw:
        errors["severity"] = f"required for a violation, one of {', '.join(SEVERITIES)}"
    if kind == "remediation" and status is None:
        errors["status"] = "required for a remediation, one of succeeded, failed, skipped"
    if kind == "policy_deployment" and not raw.get("policy_version"):
        errors["policy_version"] = "required for a policy_deployment"
    for field in KIND_TIMESTAMP_FIELDS.get(kind, ()):
        if parse_timestamp(raw.get(field)) is None:
            errors[field] = f"required for a {kind}, an RFC 3339 time with an offset"
    for field in KIND_INTEGER_FIELDS.get(kind, ()):
        if field in raw and not _is_int(raw[field]):
            errors[field] = "an integer from 0 to 2^63-1"
    if kind == "inventory":
        total, covered = raw.get("resources_total"), raw.get("resources_covered")
        if not (_is_int(total) and _is_int(covered)):
            errors.setdefault(
                "resources_total", "inventory needs resources_total and resources_covered"
            )
        elif covered > total:
            errors["resources_covered"] = "cannot exceed resources_total"


def validate_batch(
    items: list, *, default_environment: str
) -> tuple[list[EventRecord], list[EventError]]:
    """Validate every event; a repeated event_id within the batch must repeat the same event."""
    records: list[EventRecord] = []
    errors: list[EventError] = []
    seen: dict[str, tuple[int, bytes]] = {}
    for index, raw in enumerate(items):
        result = validate_event(raw, index, default_environment=default_environment)
        if isinstance(result, EventError):
            errors.append(result)
            continue
        earlier = seen.get(result.event_id)
        if earlier is None:
            seen[result.event_id] = (index, result.event_bytes)
            records.append(result)
        elif earlier[1] != result.event_bytes:
            message = f"repeats the event_id of event {earlier[0]} with different content"
            errors.append(EventError(index, result.event_id, {"event_id": message}))
    return records, errors
