"""Helpers the engine adapters share (pure, no database)."""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from audit.canonical import format_timestamp
from audit.events import MAX_ATTRIBUTES_BYTES, parse_timestamp

# Room left in `attributes` for the original record once the adapter's own keys are in.
ORIGINAL_BUDGET = MAX_ATTRIBUTES_BYTES - 2048
REASON_LIMIT = 4096


class Mapped(NamedTuple):
    """One native event and the engine record it came from ("[3]", "items[0].results[2]")."""

    event: dict
    origin: str


@dataclass
class RecordErrors(Exception):
    """Engine records that cannot be mapped at all; the whole request is refused."""

    errors: list[dict] = field(default_factory=list)

    def add(self, origin: str, problems: dict[str, str], event_id: str | None = None) -> None:
        self.errors.append({"record": origin, "event_id": event_id, "errors": problems})


def digest(*parts: object, length: int = 32) -> str:
    """A stable hex digest of the identifying parts (JSON-encoded, so no separator games)."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:length]


def stamp(moment: datetime) -> str:
    """A sortable, digits-only form of a time, for event ids ordered by observation."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")


def timestamp_text(moment: datetime) -> str:
    return format_timestamp(moment.astimezone(UTC))


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 string, epoch seconds or milliseconds, or a {seconds, nanos} object."""
    if isinstance(value, str):
        moment = parse_timestamp(value)
        return moment.astimezone(UTC) if moment else None
    if isinstance(value, dict):
        seconds, nanos = value.get("seconds"), value.get("nanos", 0)
        if not _is_number(seconds) or not _is_number(nanos):
            return None
        return _from_epoch(seconds + nanos / 1e9)
    if _is_number(value):
        # OCSF says milliseconds; Prowler and Gatekeeper's `ts` write seconds. No real event
        # happened before 1973 or after 5138, which tells the two apart.
        return _from_epoch(value / 1000 if value > 1e11 else value)
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _from_epoch(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def clip(text: object, limit: int) -> str | None:
    """A string field cut to the native limit; None for empty or non-string values."""
    if not isinstance(text, str) or not text:
        return None
    return text.replace("\x00", "")[:limit] or None


def dig(document: object, dotted: str) -> Any:
    """The value at a dotted path ("response.status.message"), or None."""
    value = document
    for part in dotted.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def keep_original(record: object, budget: int = ORIGINAL_BUDGET) -> dict:
    """The original record for attributes.original, within the attributes size limit.

    A record that fits is kept whole (unknown fields and masked values included, as sent).
    A larger one loses its largest top-level values first (usually `input`), each replaced
    by its SHA-256 and size, so the event is still stored and the loss is visible.
    """
    encoded = orjson.dumps(record)
    if len(encoded) <= budget:
        return {"original": record}
    if not isinstance(record, dict):
        return {"original_dropped": _fingerprint(encoded)}
    kept = dict(record)
    dropped: dict[str, dict] = {}
    largest_first = sorted(kept, key=lambda key: len(orjson.dumps(kept[key])), reverse=True)
    for key in largest_first:
        # Each fingerprint costs about 100 bytes of the budget itself.
        if len(orjson.dumps(kept)) + 128 * len(dropped) <= budget:
            break
        dropped[key] = _fingerprint(orjson.dumps(kept.pop(key)))
    return {"original": kept, "original_dropped": dropped}


def _fingerprint(encoded: bytes) -> dict:
    return {"sha256": hashlib.sha256(encoded).hexdigest(), "bytes": len(encoded)}


def now_utc() -> datetime:
    return datetime.now(UTC)
