"""Validation and normalisation of native events (pure, no database).

Plain Python rather than a serializer: this runs for every event on the ingest hot path.
The JSON Schema in audit/schema/event.schema.json describes the same rules for clients;
tests/audit/test_event_schema.py keeps the two in agreement.
"""

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import msgspec

from audit.canonical import canonical_json

MAX_EVENT_ID = 128
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_ATTRIBUTES_DEPTH = 32
MAX_ERRORS_PER_EVENT = 20
MAX_INT = 2**63 - 1
MAX_LATENCY_MS = 10**12  # 31 years: anything above is a unit mistake, and a float holds it

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
TIMESTAMP_FIELDS = ("occurred_at", "detected_at")
_TIMESTAMP_POSITIONS = tuple(TYPED_FIELDS.index(name) for name in TIMESTAMP_FIELDS)
_LATENCY_MS = TYPED_FIELDS.index("latency_ms")

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

RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z"
_RFC3339 = re.compile(RFC3339_PATTERN)
TRACE_ID_PATTERN = r"^[0-9a-f]{32}\Z"
_TRACE_ID = re.compile(TRACE_ID_PATTERN)


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
    """An RFC 3339 timestamp with an offset, or None when `value` is not one.

    The instant must also exist in UTC within years 1 to 9999 (what Python and the database
    can read back): 9999-12-31T23:59:59-01:00 is not one.
    """
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    return matched_timestamp(value)


def matched_timestamp(text: str) -> datetime | None:
    """The instant of a string that matches RFC3339_PATTERN, or None if it is no real instant."""
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment


LAST_DAY_REFUSED = "a time before 9999-12-31 in UTC"


def on_an_ingestible_day(moment: datetime) -> bool:
    """Whether ingest takes a time on its day: the daily rollups end a day at the next
    midnight, which Python cannot write after 9999-12-31, so that day is refused. (Verification
    still reads such a time: it may be stored by an earlier version.)"""
    return moment.astimezone(UTC).date() < date.max


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


def typed_columns(event: dict) -> list:
    """The typed column values of an event: fields by name, times parsed, latency a float.

    Ingest stores them; verification recomputes them from the hashed bytes and compares.
    A time that does not parse gives None.
    """
    columns = list(map(event.get, TYPED_FIELDS))
    for position in _TIMESTAMP_POSITIONS:
        if columns[position] is not None:
            columns[position] = parse_timestamp(columns[position])
    latency = columns[_LATENCY_MS]
    if isinstance(latency, int) and not isinstance(latency, bool):
        # Beyond MAX_LATENCY_MS the field check refuses it; a float might not hold it.
        columns[_LATENCY_MS] = float(latency) if abs(latency) <= MAX_LATENCY_MS else None
    return columns


Check = Callable[[object], str | None]


def _text(limit: int, *, minimum: int = 0) -> Check:
    message = (
        f"a string of {minimum} to {limit} characters"
        if minimum
        else (f"a string of at most {limit} characters")
    )

    def check(value: object) -> str | None:
        if isinstance(value, str) and minimum <= len(value) <= limit and "\x00" not in value:
            return None
        return message

    return check


def _choice(choices: tuple[str, ...]) -> Check:
    message = f"one of {', '.join(choices)}"
    return lambda value: None if value in choices else message


def _counter(value: object) -> str | None:
    return None if _is_int(value) else "an integer from 0 to 2^63-1"


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _latency(value: object) -> str | None:
    # Compared before any conversion: a huge integer does not fit in a float.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and 0 <= value <= MAX_LATENCY_MS:
        return None
    return f"a number of milliseconds, from 0 to {MAX_LATENCY_MS:,}"


def _trace_id(value: object) -> str | None:
    if isinstance(value, str) and _TRACE_ID.match(value):
        return None
    return "a W3C trace id: 32 lowercase hex digits"


def _attributes(value: object) -> str | None:
    return None if isinstance(value, dict) else "must be a JSON object"


def _attributes_limits(value: dict) -> str | None:
    if _depth_exceeds(value, MAX_ATTRIBUTES_DEPTH):
        return f"nested at most {MAX_ATTRIBUTES_DEPTH} levels deep"
    if len(canonical_json(value)) > MAX_ATTRIBUTES_BYTES:
        return f"at most {MAX_ATTRIBUTES_BYTES} bytes as JSON"
    return None


def _later(value: object) -> str | None:
    """Timestamps and `status` are checked after the per-field pass (they need the kind)."""
    return None


# A field's check is a function giving the problem (or None), or inline for the common cases:
# an int is a plain string field's greatest length, a tuple an enum's values.
_CORE_CHECKS: dict[str, Check | int | tuple[str, ...]] = {
    "event_id": _text(MAX_EVENT_ID, minimum=1),
    "kind": _choice(SOURCE_KINDS),
    "occurred_at": _later,
    "detected_at": _later,
    "status": _later,
    "source_seq": _counter,
    "enforced": _boolean,
    "latency_ms": _latency,
    "trace_id": _trace_id,
    "attributes": _attributes,
    **{name: limit for name, limit in STRING_LIMITS.items() if name != "event_id"},
    **ENUMS,
}
# The fields each kind may carry, with their checks.
_CHECKS_BY_KIND: dict[str, dict[str, Check | int | tuple[str, ...]]] = {
    kind: {
        **_CORE_CHECKS,
        **dict.fromkeys(KIND_INTEGER_FIELDS.get(kind, ()), _counter),
        **dict.fromkeys(KIND_TIMESTAMP_FIELDS.get(kind, ()), _later),
    }
    for kind in SOURCE_KINDS
}


def validate_event(
    raw: object, index: int, *, default_environment: str
) -> EventRecord | EventError:
    """Check one native event; on success give its canonical bytes and typed columns.

    One pass over the event's own fields (this runs for every ingested event), then the rules
    that tie fields together. The source's environment fills in a missing `environment`, so
    the stored event says where it happened.
    """
    if not isinstance(raw, dict):
        return EventError(index, None, {"event": "must be a JSON object"})
    kind = raw.get("kind")
    checks = _CHECKS_BY_KIND.get(kind, _CORE_CHECKS) if isinstance(kind, str) else _CORE_CHECKS
    return event_finish(
        raw,
        index,
        errors=_field_errors(raw, checks),
        kind=kind if checks is not _CORE_CHECKS else None,
        default_environment=default_environment,
    )


def _field_errors(raw: dict, checks: dict) -> dict[str, str]:
    """Problems of each field on its own: unknown, null, wrong type, length or value."""
    errors: dict[str, str] = {}
    for key, value in raw.items():
        check = checks.get(key)
        if check is None:
            errors[str(key)[:64]] = "unknown field; put extra data under attributes"
        elif value is None:
            errors[key] = "null is not a value here; leave the field out"
        elif type(check) is int:
            # NUL: PostgreSQL text cannot hold it (attributes can: they are only in the bytes).
            if type(value) is not str or len(value) > check or "\x00" in value:
                errors[key] = f"a string of at most {check} characters, without NUL"
        elif type(check) is tuple:
            if value not in check:
                errors[key] = f"one of {', '.join(check)}"
        else:
            problem = check(value)
            if problem is not None:
                errors[key] = problem
    for required in ("event_id", "kind", "occurred_at"):
        if required not in raw:
            errors[required] = "required"
    return errors


def event_finish(
    raw: dict, index: int, *, errors: dict[str, str], kind: str | None, default_environment: str
) -> EventRecord | EventError:
    """The rules that tie fields together, then canonical bytes and typed columns.

    `errors` holds the problems found in the fields one by one; `kind` is None when the kind
    itself is not valid.
    """
    event = raw
    if default_environment and not raw.get("environment"):
        event = {**raw, "environment": default_environment}
    columns = typed_columns(event)
    for position, name in zip(_TIMESTAMP_POSITIONS, TIMESTAMP_FIELDS, strict=True):
        moment = columns[position]
        if moment is None and name in raw:
            errors[name] = "an RFC 3339 time with an offset"
        elif moment is not None and not on_an_ingestible_day(moment):
            errors[name] = LAST_DAY_REFUSED
    if kind is not None:
        _validate_kind_fields(raw, kind, errors)
    event_id = raw.get("event_id")
    if not errors:
        try:
            event_bytes = canonical_json(event)
        except (msgspec.EncodeError, RecursionError):  # deeper than the serialiser goes
            errors["attributes"] = f"nested at most {MAX_ATTRIBUTES_DEPTH} levels deep"
            return EventError(index, event_id, errors)
        # Attributes within these limits cannot make the whole event longer or deeper than
        # this, so most events skip the exact (slower) look at them.
        nesting = event_bytes.count(b"{") + event_bytes.count(b"[")
        if len(event_bytes) > MAX_ATTRIBUTES_BYTES or nesting > MAX_ATTRIBUTES_DEPTH:
            problem = _attributes_limits(raw.get("attributes", {}))
            if problem is not None:
                errors["attributes"] = problem
    if errors:
        if len(errors) > MAX_ERRORS_PER_EVENT:  # keep the reply small for any input
            shown = dict(list(errors.items())[:MAX_ERRORS_PER_EVENT])
            shown["..."] = f"{len(errors) - MAX_ERRORS_PER_EVENT} more fields are wrong"
            errors = shown
        return EventError(index, event_id if isinstance(event_id, str) else None, errors)
    return EventRecord(event_id, event_bytes, tuple(columns))


def _validate_kind_fields(raw: dict, kind: str, errors: dict[str, str]) -> None:
    status = raw.get("status")
    if status is not None and status not in STATUSES.get(kind, ()):
        allowed = STATUSES.get(kind)
        errors["status"] = f"one of {', '.join(allowed)}" if allowed else f"not used by {kind}"
    if kind in ("decision", "violation") and not (raw.get("rule") or raw.get("policy")):
        errors["rule"] = f"a {kind} names its rule or policy"
    if kind == "decision" and "outcome" not in raw:
        errors["outcome"] = f"required for a decision, one of {', '.join(OUTCOMES)}"
    elif kind == "violation" and "severity" not in raw:
        errors["severity"] = f"required for a violation, one of {', '.join(SEVERITIES)}"
    elif kind == "remediation" and status is None:
        errors["status"] = "required for a remediation, one of succeeded, failed, skipped"
    elif kind == "policy_deployment" and not raw.get("policy_version"):
        errors["policy_version"] = "required for a policy_deployment"
    for field in KIND_TIMESTAMP_FIELDS.get(kind, ()):
        moment = parse_timestamp(raw.get(field))
        if moment is None:
            errors[field] = f"required for a {kind}, an RFC 3339 time with an offset"
        elif not on_an_ingestible_day(moment):
            errors[field] = LAST_DAY_REFUSED
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
