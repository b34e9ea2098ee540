"""The fast path (audit.fastcheck) never accepts what the Python path refuses, takes every
ordinary valid event, and gives byte-for-byte the records the Python path gives (no database)."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.events import TYPED_FIELDS, validate_batch
from audit.fastcheck import fast_records
from audit.ingest import IngestRejected, parse_events
from tests.audit.test_event_schema import VALID
from tests.audit.test_ingest_rejects import BAD_EVENTS

FIELDS = sorted(
    {*TYPED_FIELDS, "attributes", "interval_seconds", "emitted_total", "dropped_total",
     "committed_at", "resources_total", "resources_covered", "unknown_field"}
)  # fmt: skip
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "x" * 129,
            "x" * 5000,
            "a\x00b",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00Z\n",
            "2026-02-30T10:00:00Z",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T00:00:00Z",
            "9999-12-30T23:59:59Z",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "4bf92f3577b34da6a3ce929d0e0e4736\n",
            "deny",
            "open",
            "succeeded",
            "critical",
            "dry_run",
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def judged_both_ways(document: bytes) -> list | None:
    """Both paths on one body; the fast path may decline, but never disagree."""
    try:
        slow_records, slow_errors = validate_batch(
            parse_events(document, max_events=1000), default_environment="prod"
        )
    except IngestRejected:
        slow_records, slow_errors = [], ["the body is refused"]
    fast = fast_records(document, default_environment="prod", max_events=1000)
    if fast is not None:
        assert not slow_errors, (document, slow_errors)
        assert fast[0] == slow_records, document
    return fast


@pytest.mark.parametrize("name", VALID)
def test_valid_events_take_the_fast_path(name):
    assert judged_both_ways(orjson.dumps([VALID[name]])) is not None


@pytest.mark.parametrize("name", [n for n, (bad, _) in BAD_EVENTS.items() if isinstance(bad, dict)])
def test_invalid_events_are_refused_either_way(name):
    assert judged_both_ways(orjson.dumps([VALID["violation"], BAD_EVENTS[name][0]])) is None


@pytest.mark.parametrize(
    "attributes",
    [
        b'{"big": 123456789012345678901234567890}',  # orjson reads it as a float
        b'{"large": 1e16, "small": 2.5e-7}',  # exponents, which the two write differently
        b'{"x": 1, "x": 2}',  # a repeated key: the last one counts on both paths
        rb'{"unicode": "\u00e9\ud83d\ude00", "escaped": "a\"b\\c\n"}',
        b'{"u64": 18446744073709551615, "i64": -9223372036854775808, "zero": -0.0}',
    ],
)
def test_awkward_json_is_judged_the_same(attributes):
    plain = {k: v for k, v in VALID["decision with every core field"].items() if k != "attributes"}
    event = orjson.dumps(plain)[:-1] + b',"attributes":' + attributes + b"}"
    judged_both_ways(b"[" + event + b"]")


def test_wrapped_batches_and_repeats_in_a_batch():
    event = VALID["decision with every core field"]
    fast = judged_both_ways(orjson.dumps({"events": [event, event]}))
    assert fast is not None and len(fast[0]) == 1 and fast[1] == 2
    other = {**event, "reason": "something else"}
    assert judged_both_ways(orjson.dumps([event, other])) is None


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(sorted(VALID)),
    changes=st.dictionaries(st.sampled_from(FIELDS), ODD_VALUES, max_size=3),
    removed=st.sets(st.sampled_from(FIELDS), max_size=2),
)
def test_any_mutation_is_judged_the_same_by_both(base, changes, removed):
    mutated = {k: v for k, v in {**VALID[base], **changes}.items() if k not in removed}
    try:
        orjson.dumps(mutated)
    except orjson.JSONEncodeError:
        return  # not JSON (integers beyond 64 bits): cannot arrive over HTTP
    judged_both_ways(orjson.dumps([mutated]))
