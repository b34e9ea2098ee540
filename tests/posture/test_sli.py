"""SLI, SLO and framework-score arithmetic against hand-computed examples (no database).

Each example writes its arithmetic in a comment, so a reader can check it without the code.
docs/slis.md defines the figures.
"""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posture import sli
from posture.sli import (
    BURN_ALERT_RULES,
    LATENCY_BOUNDS_MS,
    LEAD_TIME_BOUNDS_MINUTES,
    TTD_BOUNDS_SECONDS,
    Figure,
    audit_completeness,
    burn_alert,
    burn_rate,
    compliance_score,
    control_status,
    decision_latency,
    deny_rate,
    deployment_lead_time,
    deployment_lead_time_mean,
    enforcement_success,
    engine_availability,
    error_budget,
    false_positive_rate,
    histogram_bucket,
    histogram_quantile,
    meets_target,
    policy_coverage,
    remediation_success,
    rule_meets_targets,
    time_to_detect,
)


def histogram(bounds, **by_upper_bound) -> list[int]:
    """Counts for `bounds` from {"b7_5": 150, "overflow": 3}: keys name a bucket's upper bound."""
    counts = [0] * (len(bounds) + 1)
    for key, count in by_upper_bound.items():
        if key == "overflow":
            counts[-1] = count
        else:
            counts[list(bounds).index(float(key[1:].replace("_", ".")))] = count
    return counts


def nearest_rank(values: list[float], q: float) -> float:
    """The true q-quantile (nearest rank) of raw values: the ceil(q * n)-th smallest."""
    return sorted(values)[math.ceil(round(q * len(values), 9)) - 1]


# ---------------------------------------------------------------------------------------------
# Histogram buckets and quantiles


def test_the_shipped_bounds_are_the_agreed_ones():
    # Rollup tables have one column per bucket: these lengths are part of the schema.
    assert len(LATENCY_BOUNDS_MS) == 21 and LATENCY_BOUNDS_MS[-1] == 5000
    assert len(TTD_BOUNDS_SECONDS) == 12 and TTD_BOUNDS_SECONDS[-1] == 86400
    assert len(LEAD_TIME_BOUNDS_MINUTES) == 12 and LEAD_TIME_BOUNDS_MINUTES[-1] == 10080


def test_a_value_on_a_bound_falls_in_that_bounds_bucket():
    # Buckets are (previous bound, bound]: 5 ms is in (3, 5], index 4; 5.0001 is in (5, 7.5].
    assert histogram_bucket(5, LATENCY_BOUNDS_MS) == 4
    assert histogram_bucket(5.0001, LATENCY_BOUNDS_MS) == 5
    assert histogram_bucket(300, TTD_BOUNDS_SECONDS) == 4


def test_values_at_or_below_the_first_bound_fall_in_the_first_bucket():
    assert histogram_bucket(0, LATENCY_BOUNDS_MS) == 0
    assert histogram_bucket(0.5, LATENCY_BOUNDS_MS) == 0
    # A violation detected "before" it occurred (clock skew) still counts, as the fastest.
    assert histogram_bucket(-3, TTD_BOUNDS_SECONDS) == 0


def test_values_above_the_last_bound_fall_in_the_overflow_bucket():
    assert histogram_bucket(5000.01, LATENCY_BOUNDS_MS) == len(LATENCY_BOUNDS_MS)
    assert histogram_bucket(math.inf, LATENCY_BOUNDS_MS) == len(LATENCY_BOUNDS_MS)


def test_nan_cannot_be_bucketed():
    with pytest.raises(ValueError, match="NaN"):
        histogram_bucket(math.nan, LATENCY_BOUNDS_MS)


def test_a_single_observation_is_every_quantile():
    # One decision of 4 ms: bucket (3, 5], so p50 = p95 = p99 = 5 ms.
    counts = [0] * 22
    counts[histogram_bucket(4, LATENCY_BOUNDS_MS)] = 1
    for q in (0.01, 0.5, 0.95, 0.99, 1):
        assert histogram_quantile(counts, LATENCY_BOUNDS_MS, q) == 5


def test_a_quantile_on_a_bucket_boundary_stays_in_the_lower_bucket():
    # 50 decisions <= 0.5 ms and 50 in (0.5, 1]: p50 is rank ceil(0.5 * 100) = 50, the last of the
    # first bucket -> 0.5 ms. p51 is rank 51, the first of the second bucket -> 1 ms.
    counts = histogram(LATENCY_BOUNDS_MS, b0_5=50, b1=50)
    assert histogram_quantile(counts, LATENCY_BOUNDS_MS, 0.5) == 0.5
    assert histogram_quantile(counts, LATENCY_BOUNDS_MS, 0.51) == 1


def test_the_rank_is_exact_for_decimal_quantiles():
    # ceil(0.07 * 100) = 7; in floats 0.07 * 100 = 7.000000000000001 would give rank 8.
    # 7 observations in the first bucket, 93 in the second: rank 7 is still in the first.
    counts = histogram(LATENCY_BOUNDS_MS, b0_5=7, b1=93)
    assert histogram_quantile(counts, LATENCY_BOUNDS_MS, 0.07) == 0.5


def test_all_observations_in_the_overflow_bucket_give_the_last_bound_as_a_lower_bound():
    counts = histogram(LATENCY_BOUNDS_MS, overflow=5)
    assert histogram_quantile(counts, LATENCY_BOUNDS_MS, 0.5) == 5000

    figure = decision_latency(counts=counts, quantile=0.5)

    assert figure.value == 5000
    assert figure.overflow is True
    assert figure.formula.startswith("decision latency p50 > 5,000 ms")
    assert "overflow bucket" in figure.formula


def test_a_histogram_without_observations_has_no_quantile():
    assert histogram_quantile([0] * 22, LATENCY_BOUNDS_MS, 0.95) is None


@pytest.mark.parametrize(
    ("counts", "q", "message"),
    [
        ([0] * 21, 0.5, "has 22 counts"),
        ([0] * 21 + [-1], 0.5, ">= 0"),
        ([1] + [0] * 21, 0, "quantile"),
        ([1] + [0] * 21, 1.5, "quantile"),
    ],
)
def test_malformed_histograms_and_quantiles_are_refused(counts, q, message):
    with pytest.raises(ValueError, match=message):
        histogram_quantile(counts, LATENCY_BOUNDS_MS, q)


def test_bounds_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        histogram_quantile([1, 0, 0], (5, 5), 0.5)


@given(
    values=st.lists(
        st.floats(min_value=0, max_value=10_000, allow_nan=False), min_size=1, max_size=200
    ),
    q=st.sampled_from([0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]),
)
def test_the_histogram_quantile_is_within_one_bucket_of_the_true_quantile(values, q):
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for value in values:
        counts[histogram_bucket(value, LATENCY_BOUNDS_MS)] += 1
    true = nearest_rank(values, q)

    answer = histogram_quantile(counts, LATENCY_BOUNDS_MS, q)

    bucket = histogram_bucket(true, LATENCY_BOUNDS_MS)
    if bucket == len(LATENCY_BOUNDS_MS):
        assert answer == LATENCY_BOUNDS_MS[-1] < true
    else:
        # Never below the true value, and no higher than that value's own bucket bound.
        assert true <= answer == LATENCY_BOUNDS_MS[bucket]


# ---------------------------------------------------------------------------------------------
# M1 decision latency

# 1,000 decisions: 500 in (1, 2] ms, 300 in (2, 3], 150 in (5, 7.5], 40 in (20, 30],
# 10 in (75, 100]. Cumulative: 500, 800, 950, 990, 1,000.
LATENCIES = histogram(LATENCY_BOUNDS_MS, b2=500, b3=300, b7_5=150, b30=40, b100=10)


@pytest.mark.parametrize(
    ("q", "rank", "expected_ms", "bucket"),
    [
        (0.5, 500, 2, "(1, 2] ms"),  # rank 500 is the last of the first 500
        (0.95, 950, 7.5, "(5, 7.5] ms"),  # 800 < 950 <= 950
        (0.99, 990, 30, "(20, 30] ms"),  # 950 < 990 <= 990
        (0.999, 999, 100, "(75, 100] ms"),  # 990 < 999 <= 1,000
    ],
)
def test_decision_latency_quantiles_from_a_hand_made_histogram(q, rank, expected_ms, bucket):
    figure = decision_latency(counts=LATENCIES, quantile=q)

    assert figure.sli == "M1"
    assert figure.unit == "ms"
    assert figure.value == expected_ms
    assert (figure.numerator, figure.denominator) == (rank, 1000)
    assert f"= {rank:,} of 1,000 decisions falls in bucket {bucket}" in figure.formula


def test_decision_latency_names_the_quantile():
    assert decision_latency(counts=LATENCIES, quantile=0.95).name == "decision latency p95"
    assert decision_latency(counts=LATENCIES, quantile=0.999).name == "decision latency p99.9"


def test_decision_latency_of_an_empty_window_is_no_data():
    figure = decision_latency(counts=[0] * 22, quantile=0.99)

    assert figure.value is None
    assert figure.denominator == 0
    assert "no data" in figure.formula
    assert meets_target(figure=figure, target=50, direction="at_most") is None


def test_a_latency_above_every_bound_never_meets_an_at_most_target():
    # The value 5,000 is only a lower bound: the decisions took longer than that.
    figure = decision_latency(counts=histogram(LATENCY_BOUNDS_MS, overflow=1), quantile=0.5)

    assert meets_target(figure=figure, target=10_000, direction="at_most") is False


def test_a_latency_on_the_target_bound_meets_it():
    # p95 = 7.5 ms (upper bound of its bucket): every decision up to rank 950 took <= 7.5 ms.
    figure = decision_latency(counts=LATENCIES, quantile=0.95)

    assert meets_target(figure=figure, target=7.5, direction="at_most") is True
    assert meets_target(figure=figure, target=7, direction="at_most") is False


# ---------------------------------------------------------------------------------------------
# M2 enforcement success


def test_enforcement_success_from_hand_counts():
    # 9,990 enforced as decided / 10,000 to enforce = 0.999 = 99.9 %.
    figure = enforcement_success(enforced=9_990, expected=10_000)

    assert figure.sli == "M2"
    assert figure.value == 0.999
    assert figure.formula == (
        "decisions enforced as decided / decisions to enforce = 9,990 / 10,000 = 99.9 %"
    )
    assert meets_target(figure=figure, target=0.999, direction="at_least") is True


def test_enforcement_success_one_short_of_target_misses_it():
    # 9,989 / 10,000 = 99.89 % < 99.9 %.
    figure = enforcement_success(enforced=9_989, expected=10_000)

    assert meets_target(figure=figure, target=0.999, direction="at_least") is False


def test_enforcement_success_of_an_empty_window_is_no_data_not_100_percent():
    figure = enforcement_success(enforced=0, expected=0)

    assert figure.value is None
    assert figure.formula.endswith("= 0 / 0: no data")
    assert meets_target(figure=figure, target=0.999, direction="at_least") is None


def test_more_enforced_than_expected_is_a_caller_bug():
    with pytest.raises(ValueError, match="exceeds"):
        enforcement_success(enforced=11, expected=10)


# ---------------------------------------------------------------------------------------------
# M3 deny rate


def test_deny_rate_from_hand_counts():
    # 1,234 / 56,789 = 0.0217295...  -> 2.173 %.
    figure = deny_rate(denies=1_234, decisions=56_789)

    assert figure.sli == "M3"
    assert figure.value == pytest.approx(0.021729560)
    assert figure.formula == "denies / decisions = 1,234 / 56,789 = 2.173 %"
    assert meets_target(figure=figure, target=0.05, direction="at_most") is True
    assert meets_target(figure=figure, target=0.02, direction="at_most") is False


def test_deny_rate_with_no_decisions_is_no_data():
    figure = deny_rate(denies=0, decisions=0)

    assert figure.value is None
    assert "no data" in figure.formula


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match=">= 0"):
        deny_rate(denies=-1, decisions=10)


# ---------------------------------------------------------------------------------------------
# M4 false-positive rate


def test_false_positive_rate_from_hand_counts():
    # 3 false positives / 400 triaged denies = 0.0075 = 0.75 %, under the 1 % target.
    figure = false_positive_rate(false_positives=3, triaged=400)

    assert figure.sli == "M4"
    assert figure.value == 0.0075
    assert figure.formula.endswith("= 3 / 400 = 0.75 %")
    assert meets_target(figure=figure, target=0.01, direction="at_most") is True


def test_false_positive_rate_with_nothing_triaged_is_no_data():
    figure = false_positive_rate(false_positives=0, triaged=0)

    assert figure.value is None
    assert meets_target(figure=figure, target=0.01, direction="at_most") is None


# ---------------------------------------------------------------------------------------------
# M5 deployment lead time

# 10 deployments: 2 in (2, 5] min, 5 in (10, 15], 2 in (15, 30], 1 in (60, 120].
# Cumulative: 2, 7, 9, 10.
LEAD_TIMES = histogram(LEAD_TIME_BOUNDS_MINUTES, b5=2, b15=5, b30=2, b120=1)


@pytest.mark.parametrize(
    ("q", "expected_minutes"),
    [
        (0.5, 15),  # rank ceil(0.5 * 10) = 5: 2 < 5 <= 7
        (0.9, 30),  # rank 9: 7 < 9 <= 9
        (0.95, 120),  # rank ceil(9.5) = 10: the slowest deployment
    ],
)
def test_deployment_lead_time_quantiles_from_a_hand_made_histogram(q, expected_minutes):
    figure = deployment_lead_time(counts=LEAD_TIMES, quantile=q)

    assert figure.sli == "M5"
    assert figure.unit == "minutes"
    assert figure.value == expected_minutes
    assert "of 10 deployments" in figure.formula


def test_deployment_lead_time_p90_meets_the_30_minute_target_and_p95_does_not():
    p90 = deployment_lead_time(counts=LEAD_TIMES, quantile=0.9)
    p95 = deployment_lead_time(counts=LEAD_TIMES, quantile=0.95)

    assert meets_target(figure=p90, target=30, direction="at_most") is True
    assert meets_target(figure=p95, target=30, direction="at_most") is False


def test_deployment_lead_time_mean_from_sum_and_count():
    # 250 minutes over 10 deployments = 25 minutes.
    figure = deployment_lead_time_mean(total_minutes=250, deployments=10)

    assert figure.value == 25
    assert figure.formula.endswith("= 250 min / 10 = 25 minutes")


def test_deployment_lead_time_without_deployments_is_no_data():
    assert deployment_lead_time(counts=[0] * 13, quantile=0.5).value is None
    mean = deployment_lead_time_mean(total_minutes=0, deployments=0)
    assert mean.value is None
    assert "no data" in mean.formula


# ---------------------------------------------------------------------------------------------
# M6 policy coverage


def test_policy_coverage_from_hand_counts():
    # 900 hooked / 1,000 resources = 90 %, exactly the target; 899 is 89.9 %, under it.
    figure = policy_coverage(covered=900, total=1_000)

    assert figure.sli == "M6"
    assert figure.value == 0.9
    assert figure.formula.endswith("= 900 / 1,000 = 90 %")
    assert meets_target(figure=figure, target=0.9, direction="at_least") is True
    under = policy_coverage(covered=899, total=1_000)
    assert meets_target(figure=under, target=0.9, direction="at_least") is False


def test_policy_coverage_without_inventory_is_no_data():
    assert policy_coverage(covered=0, total=0).value is None


# ---------------------------------------------------------------------------------------------
# M7 remediation success


def test_remediation_success_from_hand_counts():
    # 19 successful / 20 attempts = 95 %, the target.
    figure = remediation_success(succeeded=19, attempts=20)

    assert figure.sli == "M7"
    assert figure.value == 0.95
    assert figure.formula == "successful remediations / attempts = 19 / 20 = 95 %"
    assert meets_target(figure=figure, target=0.95, direction="at_least") is True


def test_remediation_success_without_attempts_is_no_data():
    assert remediation_success(succeeded=0, attempts=0).value is None


# ---------------------------------------------------------------------------------------------
# M8 audit completeness


def test_audit_completeness_shows_transit_losses_and_source_drops_apart():
    # Emitted = 9,990 stored + 7 sequence gaps + 3 reported drops = 10,000; 9,990 / 10,000 = 99.9 %.
    figure = audit_completeness(stored=9_990, missing_in_transit=7, dropped_at_source=3)

    assert figure.sli == "M8"
    assert figure.value == 0.999
    assert (figure.numerator, figure.denominator) == (9_990, 10_000)
    assert figure.formula == (
        "events stored / (stored + missing in transit + dropped at source) = "
        "9,990 / (9,990 + 7 + 3) = 9,990 / 10,000 = 99.9 %"
    )
    assert meets_target(figure=figure, target=1.0, direction="at_least") is False


def test_audit_completeness_without_losses_meets_100_percent():
    figure = audit_completeness(stored=500, missing_in_transit=0, dropped_at_source=0)

    assert figure.value == 1.0
    assert meets_target(figure=figure, target=1.0, direction="at_least") is True


def test_audit_completeness_of_a_silent_window_is_no_data():
    figure = audit_completeness(stored=0, missing_in_transit=0, dropped_at_source=0)

    assert figure.value is None
    assert figure.formula.endswith("0 / 0: no data")


def test_audit_completeness_with_everything_lost_is_zero_not_no_data():
    # The sources said they emitted 12 and none arrived: 0 / 12 = 0 %.
    figure = audit_completeness(stored=0, missing_in_transit=10, dropped_at_source=2)

    assert figure.value == 0.0


# ---------------------------------------------------------------------------------------------
# M9 engine availability


def test_engine_availability_from_hand_counts():
    # 30-second heartbeats over one day: 2,880 expected, 2,878 seen -> 0.99930556 = 99.931 %.
    figure = engine_availability(intervals_seen=2_878, intervals_expected=2_880)

    assert figure.sli == "M9"
    assert figure.value == pytest.approx(0.9993055556)
    assert figure.formula.endswith("= 2,878 / 2,880 = 99.931 %")
    assert meets_target(figure=figure, target=0.9995, direction="at_least") is False


def test_engine_availability_caps_seen_at_expected():
    # 3,000 beats seen where 2,880 were expected is 100 %, never 104 %.
    figure = engine_availability(intervals_seen=3_000, intervals_expected=2_880)

    assert figure.value == 1.0
    assert figure.numerator == 2_880
    assert "3,000 seen, capped at the 2,880 expected" in figure.formula


def test_engine_availability_with_nothing_expected_is_no_data():
    assert engine_availability(intervals_seen=4, intervals_expected=0).value is None


# ---------------------------------------------------------------------------------------------
# M10 violation time-to-detect

# 20 critical violations: 12 detected in (30, 60] s, 6 in (120, 300], 2 in (600, 900].
# Cumulative: 12, 18, 20.
DETECTIONS = histogram(TTD_BOUNDS_SECONDS, b60=12, b300=6, b900=2)


@pytest.mark.parametrize(
    ("q", "expected_seconds"),
    [
        (0.5, 60),  # rank 10 <= 12
        (0.9, 300),  # rank 18: 12 < 18 <= 18
        (0.95, 900),  # rank 19: 18 < 19 <= 20
    ],
)
def test_time_to_detect_quantiles_from_a_hand_made_histogram(q, expected_seconds):
    figure = time_to_detect(counts=DETECTIONS, quantile=q)

    assert figure.sli == "M10"
    assert figure.unit == "seconds"
    assert figure.value == expected_seconds
    assert "of 20 violations" in figure.formula


def test_time_to_detect_p90_meets_five_minutes_and_p95_does_not():
    p90 = time_to_detect(counts=DETECTIONS, quantile=0.9)
    p95 = time_to_detect(counts=DETECTIONS, quantile=0.95)

    assert meets_target(figure=p90, target=300, direction="at_most") is True
    assert meets_target(figure=p95, target=300, direction="at_most") is False


def test_time_to_detect_without_violations_is_no_data():
    figure = time_to_detect(counts=[0] * 13, quantile=0.95)

    assert figure.value is None
    assert figure.formula == "violation time-to-detect p95: no data (0 violations in the window)"


# ---------------------------------------------------------------------------------------------
# Figures and targets


def test_a_figure_is_json_ready():
    figure = decision_latency(counts=LATENCIES, quantile=0.95)

    data = json.loads(json.dumps(figure.as_dict()))

    assert data == {
        "sli": "M1",
        "name": "decision latency p95",
        "value": 7.5,
        "unit": "ms",
        "numerator": 950,
        "denominator": 1000,
        "formula": figure.formula,
        "overflow": False,
    }


def test_every_sli_has_a_direction():
    assert sli.SLI_DIRECTION == {
        "M1": "at_most",
        "M2": "at_least",
        "M3": "at_most",
        "M4": "at_most",
        "M5": "at_most",
        "M6": "at_least",
        "M7": "at_least",
        "M8": "at_least",
        "M9": "at_least",
        "M10": "at_most",
    }


def test_an_unknown_direction_is_refused():
    figure = Figure(
        sli="M3", name="deny rate", value=0.1, unit="ratio", numerator=1, denominator=10, formula=""
    )
    with pytest.raises(ValueError, match="direction"):
        meets_target(figure=figure, target=0.2, direction="below")


# ---------------------------------------------------------------------------------------------
# Error budgets and burn rates


def test_error_budget_from_hand_counts():
    # 99.9 % of 1,000,000: 1,000 bad allowed; 600 bad spend 60 %, 40 % remains.
    budget = error_budget(good=999_400, total=1_000_000, target=0.999)

    assert budget.allowed_bad == 1_000
    assert budget.bad == 600
    assert budget.spent == 0.6
    assert budget.remaining == 0.4
    assert budget.exhausted is False
    assert "spent = 600 / 1,000 = 60 %" in budget.formula


def test_an_overspent_budget_goes_negative():
    # 1,500 bad of 1,000 allowed: 150 % spent, -50 % remaining.
    budget = error_budget(good=998_500, total=1_000_000, target=0.999)

    assert budget.spent == 1.5
    assert budget.remaining == -0.5
    assert budget.exhausted is True


def test_error_budget_of_an_empty_window_is_no_data():
    budget = error_budget(good=0, total=0, target=0.999)

    assert budget.allowed_bad is None
    assert budget.remaining is None
    assert budget.exhausted is None
    assert "no data" in budget.formula


def test_a_100_percent_target_has_a_zero_budget():
    # M8 for critical sources: no event may be lost.
    intact = error_budget(good=10, total=10, target=1.0)
    broken = error_budget(good=9, total=10, target=1.0)

    assert (intact.spent, intact.remaining, intact.exhausted) == (0.0, 1.0, False)
    assert broken.exhausted is True
    assert math.isinf(broken.spent)
    assert json.loads(json.dumps(broken.as_dict()))["remaining"] is None


def test_burn_rate_at_the_fast_page_threshold_is_exactly_14_4():
    # 144 bad of 10,000 in the last hour = 1.44 % errors; budget 0.1 % -> 1.44 / 0.1 = 14.4.
    # In floats, 0.0144 / (1 - 0.999) is 14.399999999999986 and would not page.
    rate = burn_rate(bad=144, total=10_000, target=0.999)

    assert rate == 14.4
    assert burn_alert(burn_1h=rate, burn_6h=rate) == "page"


def test_burn_rate_one_spends_the_budget_exactly():
    # 5 bad of 10,000 = 0.05 %, target 99.95 % -> budget 0.05 % -> burn 1.
    assert burn_rate(bad=5, total=10_000, target=0.9995) == 1.0


def test_burn_rate_without_events_is_no_data():
    assert burn_rate(bad=0, total=0, target=0.999) is None


def test_burn_rate_against_a_100_percent_target():
    assert burn_rate(bad=0, total=10, target=1.0) == 0.0
    assert burn_rate(bad=1, total=10, target=1.0) == math.inf
    assert burn_alert(burn_1h=math.inf, burn_6h=math.inf) == "page"


@pytest.mark.parametrize("target", [0, -0.5, 1.01])
def test_impossible_targets_are_refused(target):
    with pytest.raises(ValueError, match="target"):
        burn_rate(bad=1, total=10, target=target)


def test_the_alert_rules_are_the_workbooks_table():
    # SRE workbook, "Alerting on SLOs", Table 5-8: threshold = budget share * 720 h / long window.
    rows = [(r.severity, r.long_window, r.short_window, r.burn_rate) for r in BURN_ALERT_RULES]
    assert rows == [("page", "1h", "5m", 14.4), ("page", "6h", "30m", 6), ("ticket", "3d", "6h", 1)]
    hours = {"1h": 1, "6h": 6, "3d": 72}
    for rule in BURN_ALERT_RULES:
        # 2 % * 720 / 1 = 14.4; 5 % * 720 / 6 = 6; 10 % * 720 / 72 = 1.
        assert rule.burn_rate == pytest.approx(rule.budget_consumed * 720 / hours[rule.long_window])


# ---------------------------------------------------------------------------------------------
# Multiwindow, multi-burn-rate alerts


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        # Fast burn: 1h and 5m both at 14.4.
        ({"burn_1h": 14.4, "burn_6h": 3, "burn_5m": 14.4}, "page"),
        # 1h at 15 but the last 5 minutes recovered: no fast page; 6h at 3 opens a ticket.
        ({"burn_1h": 15, "burn_6h": 3, "burn_5m": 2}, "ticket"),
        # Slow burn: 6h and 30m both at 6.
        ({"burn_1h": 5, "burn_6h": 6, "burn_30m": 6}, "page"),
        # 6h at 6 but 30m recovered: ticket, not page.
        ({"burn_1h": 5, "burn_6h": 6, "burn_30m": 0.5}, "ticket"),
        # Short windows not given: the long window decides alone.
        ({"burn_1h": 20, "burn_6h": 2}, "page"),
        ({"burn_1h": 2, "burn_6h": 6}, "page"),
        ({"burn_1h": 14.3, "burn_6h": 5.9}, "ticket"),
        # Ticket at 6h >= 1, inclusive.
        ({"burn_1h": 0.5, "burn_6h": 1.0}, "ticket"),
        ({"burn_1h": 0.5, "burn_6h": 0.99}, "ok"),
        # With a 3-day burn rate, the ticket needs it at >= 1 too (the workbook's 3d/6h pair).
        ({"burn_1h": 0.5, "burn_6h": 2, "burn_3d": 0.8}, "ok"),
        ({"burn_1h": 0.5, "burn_6h": 2, "burn_3d": 1.1}, "ticket"),
        # No traffic in the last hour, but the 6 hours burn fast.
        ({"burn_1h": None, "burn_6h": 7}, "page"),
        ({"burn_1h": None, "burn_6h": 0.2}, "ok"),
        ({"burn_1h": None, "burn_6h": None}, "no data"),
        ({"burn_1h": 0, "burn_6h": 0}, "ok"),
    ],
)
def test_burn_alert_follows_the_multiwindow_rules(windows, expected):
    assert burn_alert(**windows) == expected


# ---------------------------------------------------------------------------------------------
# Frameworks: rules, controls, score


@pytest.mark.parametrize(
    ("slo_results", "expected"),
    [
        ([True, True], True),
        ([True, None], True),  # one SLO with data, and it meets target
        ([True, False, None], False),  # any miss fails the rule
        ([None, None], None),
        ([], None),
    ],
)
def test_a_rule_meets_targets_when_no_slo_with_data_misses(slo_results, expected):
    assert rule_meets_targets(slo_results=slo_results) is expected


def test_control_status_counts_rules_without_data_apart():
    # 2 pass, 1 fails, 1 has no data: 2 / 3 = 66.667 %, not 2 / 4 and not 3 / 4.
    status = control_status(rule_results=[True, True, False, None], control="PCI 10.2.1.1")

    assert (status.passing, status.failing, status.no_data) == (2, 1, 1)
    assert (status.rules, status.with_data) == (4, 3)
    assert status.share == pytest.approx(2 / 3)
    assert status.formula == (
        "rules meeting target / rules with data = 2 / 3 = 66.667 %; "
        "rules without data, not counted: 1"
    )
    assert status.as_dict()["control"] == "PCI 10.2.1.1"


def test_a_no_data_rule_never_counts_as_passing():
    # One failing rule and one silent rule: 0 / 1, not 1 / 2.
    assert control_status(rule_results=[False, None]).share == 0.0


def test_a_control_without_data_has_no_share():
    for results in ([None, None], []):
        status = control_status(rule_results=results)
        assert status.share is None
        assert "no data" in status.formula


def test_compliance_score_is_the_mean_of_control_shares_with_data():
    # Shares: A 2/2, B 1/2, C 2/3, D no data (skipped).
    # (1 + 0.5 + 0.6667) / 3 = (13/6) / 3 = 13/18 = 0.72222 -> 72.222 %.
    controls = [
        control_status(rule_results=[True, True], control="A"),
        control_status(rule_results=[True, False], control="B"),
        control_status(rule_results=[True, True, False], control="C"),
        control_status(rule_results=[None], control="D"),
    ]

    score = compliance_score(controls=controls)

    assert score.value == pytest.approx(13 / 18)
    assert score.denominator == 3
    assert score.numerator == pytest.approx(13 / 6)
    assert score.formula == (
        "mean of control shares (rules meeting target / rules with data) = "
        "(2/2 + 1/2 + 2/3) / 3 = 72.222 %; controls without data, not counted: 1"
    )
    assert meets_target(figure=score, target=0.7, direction="at_least") is True


def test_compliance_score_without_any_data_is_no_data():
    score = compliance_score(controls=[control_status(rule_results=[None])])

    assert score.value is None
    assert "no data" in score.formula
    assert compliance_score(controls=[]).value is None
