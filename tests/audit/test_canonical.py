"""Canonical bytes are what a third party re-implements: pin them down (no database)."""

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from audit.canonical import canonical_json, chain_hash, record_bytes

# Floats written without an exponent; with one, orjson writes 1e-7 where Python writes 1e-07
# (docs/ledger.md says so: verifiers hash the stored bytes and never re-serialise).
plain_floats = st.floats(min_value=-1e15, max_value=1e15).filter(lambda x: x == 0 or abs(x) >= 1e-4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text() | plain_floats,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def stdlib_canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@given(json_values)
def test_canonical_json_equals_the_documented_stdlib_form(value):
    assert canonical_json(value) == stdlib_canonical(value)


@given(
    event=st.dictionaries(st.text(max_size=8), json_values, max_size=6),
    seq=st.integers(1, 2**62),
    source=st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
)
def test_record_bytes_equal_the_canonical_record_object(event, seq, source):
    received_at = "2026-11-25T10:00:00.123456Z"
    built = record_bytes(
        event_bytes=canonical_json(event), received_at=received_at, seq=seq, source=source
    )

    assert built == canonical_json(
        {"event": event, "received_at": received_at, "seq": seq, "source": source, "v": 1}
    )


def test_the_chain_hash_covers_the_previous_hash_and_the_bytes():
    first = chain_hash("0" * 64, b'{"a":1}')

    assert first == hashlib.sha256(bytes(32) + b'{"a":1}').hexdigest()
    assert chain_hash(first, b'{"a":1}') != first


def test_a_known_record_has_a_known_hash():
    # Fixed vector, also printed in docs/ledger.md for people re-implementing verification.
    canonical = record_bytes(
        event_bytes=canonical_json(
            {"event_id": "e-1", "kind": "heartbeat", "occurred_at": "2026-11-25T10:00:00Z"}
        ),
        received_at="2026-11-25T10:00:01.000000Z",
        seq=1,
        source="opa-prod",
    )

    assert canonical == (
        b'{"event":{"event_id":"e-1","kind":"heartbeat","occurred_at":"2026-11-25T10:00:00Z"},'
        b'"received_at":"2026-11-25T10:00:01.000000Z","seq":1,"source":"opa-prod","v":1}'
    )
    assert chain_hash("0" * 64, canonical) == (
        "682262db465f90d00bc1b9af36e6218e54e5674a41acea78e119f54655a230f5"
    )
