"""The fast path of native ingest: a whole valid batch decoded, checked and serialised in C.

msgspec decodes the body straight into one struct per event, checking every field and the
fields each kind requires as it goes, and each struct is written back as canonical JSON
(msgspec too, audit.canonical: the same bytes as the event parsed into a dict). That
costs ~7 µs an event against ~17 µs for parsing to dicts and checking them in Python
(docs/benchmarks.md). Whatever this path is not sure of, it leaves to the Python path
(audit.events), which says exactly what is wrong: `fast_records` then gives None. The structs
are built from the same tables as the Python checks, and tests/audit/test_fastcheck.py holds
both paths to the same records and the same verdicts.
"""

from operator import attrgetter
from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta, UnsetType

from audit.canonical import canonical_json
from audit.events import (
    ENUMS,
    KIND_INTEGER_FIELDS,
    KIND_TIMESTAMP_FIELDS,
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    MAX_EVENT_ID,
    MAX_INT,
    MAX_LATENCY_MS,
    OUTCOMES,
    RFC3339_PATTERN,
    SEVERITIES,
    SOURCE_KINDS,
    STATUSES,
    STRING_LIMITS,
    TRACE_ID_PATTERN,
    TYPED_FIELDS,
    EventRecord,
    matched_timestamp,
    on_an_ingestible_day,
)

_TIMESTAMP = Annotated[str, Meta(pattern=RFC3339_PATTERN)]
_COUNTER = Annotated[int, Meta(ge=0, le=MAX_INT)]
# Integers stay integers (the canonical bytes keep what was sent); msgspec would make a float.
_LATENCY = (
    Annotated[int, Meta(ge=0, le=MAX_LATENCY_MS)] | Annotated[float, Meta(ge=0, le=MAX_LATENCY_MS)]
)

# What each kind requires on top of the core fields; the Python path has the same rules in
# audit.events._validate_kind_fields.
_REQUIRED: dict[str, dict[str, object]] = {
    "decision": {"outcome": Literal[OUTCOMES]},
    "violation": {"severity": Literal[SEVERITIES]},
    "remediation": {"status": Literal[STATUSES["remediation"]]},
    "policy_deployment": {"policy_version": Annotated[str, Meta(min_length=1, max_length=128)]},
}


def _optional(annotation: object) -> tuple:
    # Not sent: None, the column's value as it is, so a struct's typed fields read straight
    # into a row. An explicit null is not of the annotated type, so msgspec refuses it and the
    # Python path explains; omit_defaults leaves unsent fields out of the canonical bytes.
    return (annotation, None)


def _event_struct(kind: str) -> type:
    statuses = STATUSES.get(kind)
    fields: dict[str, tuple] = {
        "event_id": (Annotated[str, Meta(min_length=1, max_length=MAX_EVENT_ID)],),
        "occurred_at": (_TIMESTAMP,),
        "detected_at": _optional(_TIMESTAMP),
        "source_seq": _optional(_COUNTER),
        "enforced": _optional(bool),
        "latency_ms": _optional(_LATENCY),
        "trace_id": _optional(Annotated[str, Meta(pattern=TRACE_ID_PATTERN)]),
        "attributes": _optional(dict),
        # A kind without statuses takes none: no value sent fits UnsetType.
        "status": _optional(Literal[statuses]) if statuses else (UnsetType, None),
    }
    for name, limit in STRING_LIMITS.items():
        fields.setdefault(name, _optional(Annotated[str, Meta(max_length=limit)]))
    for name, choices in ENUMS.items():
        fields[name] = _optional(Literal[choices])
    for name in KIND_INTEGER_FIELDS.get(kind, ()):
        fields[name] = _optional(_COUNTER)
    for name in KIND_TIMESTAMP_FIELDS.get(kind, ()):
        fields[name] = (_TIMESTAMP,)
    if kind == "inventory":
        fields.update(resources_total=(_COUNTER,), resources_covered=(_COUNTER,))
    for name, annotation in _REQUIRED.get(kind, {}).items():
        fields[name] = (annotation,)
    # Required fields first: a struct's optional fields must follow them.
    ordered = sorted(fields.items(), key=lambda item: len(item[1]) > 1)
    return msgspec.defstruct(
        f"{kind.title()}Event",
        [(name, *spec) for name, spec in ordered],
        tag_field="kind",
        tag=kind,
        forbid_unknown_fields=True,
        omit_defaults=True,
        namespace={"kind": kind},  # the tag as an attribute, for the typed columns
    )


_STRUCTS = {kind: _event_struct(kind) for kind in SOURCE_KINDS}
_EVENT = Union[tuple(_STRUCTS.values())]  # noqa: UP007
_WRAPPED = msgspec.defstruct("Batch", [("events", list[_EVENT])], forbid_unknown_fields=True)
_DECODER = msgspec.json.Decoder(list[_EVENT] | _WRAPPED)

_typed_values = attrgetter(*TYPED_FIELDS)
_TIMESTAMPS_AT = tuple(TYPED_FIELDS.index(name) for name in ("occurred_at", "detected_at"))
_LATENCY_AT = TYPED_FIELDS.index("latency_ms")


def fast_records(
    document: bytes, *, default_environment: str, max_events: int
) -> tuple[list[EventRecord], int] | None:
    """The records of a batch that is valid as a whole, and how many events it held.

    None when any event is not certainly valid, or the body is not certainly well formed:
    the Python path then decides, and explains.
    """
    # NUL, refused in typed strings: leave it to the Python checks. (Looking for a backslash
    # first is a memchr; most bodies have none, and the longer search costs ~1 % of ingest.)
    if b"\\" in document and b"\\u0000" in document:
        return None
    try:
        batch = _DECODER.decode(document)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    events = batch if isinstance(batch, list) else batch.events
    if len(events) > max_events:
        return None
    records: list[EventRecord] = []
    seen: dict[str, bytes] = {}
    for event in events:
        record = _record(event, default_environment)
        if record is None:
            return None
        earlier = seen.get(record.event_id)
        if earlier is None:
            seen[record.event_id] = record.event_bytes
            records.append(record)
        elif earlier != record.event_bytes:
            return None  # a repeated event_id with other content: the Python path explains
    return records, len(events)


def _record(event: msgspec.Struct, default_environment: str) -> EventRecord | None:
    kind = event.kind
    if kind in ("decision", "violation") and not (event.rule or event.policy):
        return None
    if kind == "inventory" and event.resources_covered > event.resources_total:
        return None
    if default_environment and not event.environment:
        event.environment = default_environment
    event_bytes = canonical_json(event)
    nesting = event_bytes.count(b"{") + event_bytes.count(b"[")
    if len(event_bytes) > MAX_ATTRIBUTES_BYTES or nesting > MAX_ATTRIBUTES_DEPTH:
        return None  # perhaps over the attribute limits: the Python path measures exactly
    columns = list(_typed_values(event))
    for position in _TIMESTAMPS_AT:
        if columns[position] is not None:
            moment = columns[position] = matched_timestamp(columns[position])
            if moment is None or not on_an_ingestible_day(moment):
                return None
    for name in KIND_TIMESTAMP_FIELDS.get(kind, ()):
        moment = matched_timestamp(getattr(event, name))
        if moment is None or not on_an_ingestible_day(moment):
            return None
    latency = columns[_LATENCY_AT]
    if type(latency) is int:
        columns[_LATENCY_AT] = float(latency)
    return EventRecord(event.event_id, event_bytes, tuple(columns))
