"""The C checks (audit.fastcheck) never accept what the Python checks refuse, and accept
every valid event, so a batch is judged the same either way (no database)."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.events import TYPED_FIELDS, validate_batch
from audit.fastcheck import fields_acceptable
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


def judged_both_ways(items: list) -> None:
    slow_records, slow_errors = validate_batch(items, default_environment="prod")
    fast = fields_acceptable(orjson.dumps(items))
    fast_records, fast_errors = validate_batch(
        items, default_environment="prod", fields_checked=fast
    )
    assert bool(fast_errors) == bool(slow_errors), (items, slow_errors, fast_errors)
    assert fast_records == slow_records


@pytest.mark.parametrize("name", VALID)
def test_valid_events_take_the_fast_path(name):
    assert fields_acceptable(orjson.dumps([VALID[name]]))
    judged_both_ways([VALID[name]])


@pytest.mark.parametrize("name", [n for n, (bad, _) in BAD_EVENTS.items() if isinstance(bad, dict)])
def test_invalid_events_are_refused_either_way(name):
    judged_both_ways([VALID["violation"], BAD_EVENTS[name][0]])


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
    judged_both_ways([mutated])
