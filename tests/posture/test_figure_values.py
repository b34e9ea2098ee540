"""figure_values (the daily series' fast path) gives exactly the values of figures_from."""

from hypothesis import given, settings
from hypothesis import strategies as st

from posture import sli
from posture.selectors import (
    RuleCounts,
    SourceCounts,
    figure_values,
    figures_from,
    score_value,
)

COUNT = st.integers(min_value=0, max_value=10**7)


def histogram(bounds: tuple) -> st.SearchStrategy:
    return st.lists(
        st.integers(min_value=0, max_value=10**5),
        min_size=len(bounds) + 1,
        max_size=len(bounds) + 1,
    )


@st.composite
def counts(draw) -> tuple[RuleCounts, SourceCounts]:
    decisions = draw(COUNT)
    expected = draw(st.integers(0, decisions))
    triaged = draw(COUNT)
    rule = RuleCounts(
        decisions=decisions,
        denies=draw(st.integers(0, decisions)),
        enforce_expected=expected,
        enforce_ok=draw(st.integers(0, expected)),
        latency=draw(histogram(sli.LATENCY_BOUNDS_MS)),
        ttd=draw(histogram(sli.TTD_BOUNDS_SECONDS)),
        lead_time=draw(histogram(sli.LEAD_TIME_BOUNDS_MINUTES)),
        remediations_succeeded=draw(COUNT),
        remediations_failed=draw(COUNT),
        triaged=triaged,
        false_positives=draw(st.integers(0, triaged)),
    )
    total = draw(COUNT)
    engines = SourceCounts(
        seq_stored=draw(COUNT),
        seq_expected=draw(COUNT),
        dropped=draw(COUNT),
        slots_seen=draw(COUNT),
        slots_expected=draw(COUNT),
        resources_total=total,
        resources_covered=draw(st.integers(0, total)),
    )
    return rule, engines


@settings(max_examples=300, deadline=None)
@given(counts())
def test_figure_values_equal_the_figures_values(pair):
    rule, engines = pair
    assert figure_values(rule, engines) == [f.value for f in figures_from(rule, engines)]


def test_an_empty_bucket_is_no_data_everywhere():
    assert figure_values(RuleCounts(), SourceCounts()) == [None] * 12


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([True, False, None]), max_size=6), max_size=12))
def test_score_value_equals_the_compliance_score(rules_by_control):
    controls = [sli.control_status(rule_results=results) for results in rules_by_control]
    assert score_value(controls) == sli.compliance_score(controls=controls).value
