"""Canonical bytes of ledger records and their hash chain (pure, no database).

A stored record is the JSON object

    {"event": {...}, "received_at": "...Z", "seq": N, "source": "name", "v": 1}

serialised with keys sorted at every level, no insignificant white space, UTF-8, non-ASCII
characters as they are (not escaped). `hash = SHA-256(bytes.fromhex(prev_hash) || canonical)`;
the first record of a chain has prev_hash = 64 zeros. docs/ledger.md specifies this for
third-party verifiers.
"""

import hashlib
from datetime import UTC, datetime

import msgspec
import orjson

CANONICAL_VERSION = 1
GENESIS_HASH = "0" * 64


_ENCODER = msgspec.json.Encoder(order="sorted")


def canonical_json(value: object) -> bytes:
    """The canonical serialisation of any JSON value (sorted keys, compact, UTF-8).

    Also takes the msgspec structs of audit.fastcheck, which come out as the same bytes as the
    dict of the same event. Raises msgspec.EncodeError or RecursionError past its depth.
    """
    return _ENCODER.encode(value)


class NotCanonicalJSON(ValueError):
    """Stored bytes that do not parse as JSON."""


def canonical_loads(data: bytes) -> object:
    """Parse stored canonical bytes, as ingest parsed the events (msgspec: integers of any size
    stay exact). Raises NotCanonicalJSON for bytes that are not JSON."""
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        raise NotCanonicalJSON(str(error)) from None


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, the form Posture writes its own times in."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_bytes(*, event_bytes: bytes, received_at: str, seq: int, source: str) -> bytes:
    """Canonical bytes of one stored record, from the already canonical event bytes.

    test_canonical checks it equals canonical_json() of the same object.
    """
    return record_template(received_at=received_at, source=source) % (event_bytes, seq)


def record_template(*, received_at: str, source: str) -> bytes:
    """The canonical bytes of a record with its event and seq left open, in sorted key order:
    `template % (event_bytes, seq)` gives record_bytes(). Every record of a batch shares
    received_at and source, so an append builds this once and fills it in per event."""
    received = orjson.dumps(received_at).replace(b"%", b"%%")
    name = orjson.dumps(source).replace(b"%", b"%%")
    return b'{"event":%b,"received_at":' + received + b',"seq":%d,"source":' + name + b',"v":1}'


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return chain_digest(bytes.fromhex(prev_hash), canonical).hex()


def chain_digest(prev_digest: bytes, canonical: bytes) -> bytes:
    """chain_hash() with both hashes as raw bytes (what a chain walk passes on)."""
    return hashlib.sha256(prev_digest + canonical).digest()
