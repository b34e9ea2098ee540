"""Reads of a scope's state from the ledger, for audit.adapters.snapshots.

Both reads are ranges of the (source, event_id) unique index, the one idempotent ingest already
keeps, so no index is added for them. Adapter ids use only [0-9a-z] after the prefix, which
every collation orders like bytes; ids in the range that do not start with the prefix (only
possible under a collation that skips punctuation) are filtered out here.
"""

from datetime import UTC, datetime

from audit.adapters.common import stamp
from audit.adapters.snapshots import (
    CARRIED_FIELDS,
    MARKER,
    VIOLATION,
    OpenViolation,
    ScopeState,
)
from audit.models import Event

# 3 engine letters + 16 scope digits + the part letter: where a marker's time begins.
_STAMP_AT = 20
_STAMP_LENGTH = 20
_KEY_AT, _KEY_LENGTH = 20, 16


def scope_state_read(*, source_id: int, prefix: str) -> ScopeState:
    """The newest two observations of a scope and its open violations.

    Call it under the source's chain-head lock, so no other request changes the scope
    between this read and the append.
    """
    latest = _latest_marker(source_id, prefix, before=None)
    previous = _latest_marker(source_id, prefix, before=latest) if latest else None
    open_violations = _open_violations(source_id, prefix)
    return ScopeState(latest_at=latest, previous_at=previous, open=open_violations)


def _latest_marker(source_id: int, prefix: str, *, before: datetime | None) -> datetime | None:
    start = prefix + MARKER
    end = start + stamp(before) if before else prefix + chr(ord(MARKER) + 1)
    ids = (
        Event.objects.filter(source_id=source_id, event_id__gte=start, event_id__lt=end)
        .order_by("-event_id")
        .values_list("event_id", flat=True)[:8]
    )
    for event_id in ids:
        if event_id.startswith(start):
            return _parse_stamp(event_id[_STAMP_AT : _STAMP_AT + _STAMP_LENGTH])
    return None


def _open_violations(source_id: int, prefix: str) -> dict[str, OpenViolation]:
    """Violations whose newest event in this scope opened them (in chain order)."""
    start = prefix + VIOLATION
    rows = (
        Event.objects.filter(
            source_id=source_id,
            event_id__gte=start,
            event_id__lt=prefix + chr(ord(VIOLATION) + 1),
        )
        .order_by("seq")
        .values_list("event_id", "status", "detected_at", *CARRIED_FIELDS)
    )
    state: dict[str, OpenViolation | None] = {}
    for event_id, status, detected_at, *carried in rows:
        if not event_id.startswith(start):
            continue
        key_hash = event_id[_KEY_AT : _KEY_AT + _KEY_LENGTH]
        if status == "open":
            fields = {n: v for n, v in zip(CARRIED_FIELDS, carried, strict=True) if v is not None}
            state[key_hash] = OpenViolation(event_id, fields, detected_at)
        else:
            state[key_hash] = None
    return {key: value for key, value in state.items() if value is not None}


def _parse_stamp(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        return None
