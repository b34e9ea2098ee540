"""The field-by-field checks of audit.events, done in C by msgspec for a whole batch at once.

They cost ~9 µs an event in Python and ~1.5 µs here (docs/benchmarks.md). This only decides
that every field of every event is acceptable on its own; whatever it refuses goes through the
Python checks, which say exactly what is wrong. The structs are built from the same tables as
those checks (audit/events.py), and tests/audit/test_fastcheck.py holds the two to agreement.
"""

from typing import Annotated, Literal, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType

from audit.events import (
    ENUMS,
    KIND_INTEGER_FIELDS,
    KIND_TIMESTAMP_FIELDS,
    MAX_EVENT_ID,
    MAX_INT,
    RFC3339_PATTERN,
    SOURCE_KINDS,
    STATUSES,
    STRING_LIMITS,
    TRACE_ID_PATTERN,
)

_TIMESTAMP = Annotated[str, Meta(pattern=RFC3339_PATTERN)]
_COUNTER = Annotated[int, Meta(ge=0, le=MAX_INT)]
_ALL_STATUSES = tuple(sorted({status for values in STATUSES.values() for status in values}))


def _optional(annotation: object) -> tuple:
    return (annotation | UnsetType, UNSET)


def _event_struct(kind: str) -> type:
    fields: list[tuple] = [
        ("event_id", Annotated[str, Meta(min_length=1, max_length=MAX_EVENT_ID)]),
        ("occurred_at", _TIMESTAMP),
        ("detected_at", *_optional(_TIMESTAMP)),
        ("source_seq", *_optional(_COUNTER)),
        ("enforced", *_optional(bool)),
        ("latency_ms", *_optional(Annotated[float, Meta(ge=0)])),
        ("trace_id", *_optional(Annotated[str, Meta(pattern=TRACE_ID_PATTERN)])),
        ("attributes", *_optional(dict)),
        ("status", *_optional(Literal[_ALL_STATUSES])),  # which ones a kind takes: Python
    ]
    fields += [
        (name, *_optional(Annotated[str, Meta(max_length=limit)]))
        for name, limit in STRING_LIMITS.items()
        if name != "event_id"
    ]
    fields += [(name, *_optional(Literal[choices])) for name, choices in ENUMS.items()]
    fields += [(name, *_optional(_COUNTER)) for name in KIND_INTEGER_FIELDS.get(kind, ())]
    fields += [(name, *_optional(_TIMESTAMP)) for name in KIND_TIMESTAMP_FIELDS.get(kind, ())]
    return msgspec.defstruct(
        f"{kind.title()}Event", fields, tag_field="kind", tag=kind, forbid_unknown_fields=True
    )


_EVENT = Union[tuple(_event_struct(kind) for kind in SOURCE_KINDS)]  # noqa: UP007
_WRAPPED = msgspec.defstruct("Batch", [("events", list[_EVENT])], forbid_unknown_fields=True)
_DECODER = msgspec.json.Decoder(list[_EVENT] | _WRAPPED)


def fields_acceptable(document: bytes) -> bool:
    """Whether every field of every event in this JSON body passes the field checks."""
    if b"\\u0000" in document:  # NUL, refused in typed strings: leave it to the Python checks
        return False
    try:
        _DECODER.decode(document)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    return True
