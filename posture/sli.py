"""SLI, SLO and framework-score arithmetic (pure: no ORM, no Django).

Every function takes counts that a caller has already summed over a window and scope (from
rollups or from raw events; both must give the same counts) and returns a result that carries
its own formula text, so a figure on screen or in the API says what was counted over what.

Two rules hold everywhere:

- An empty window is "no data": value None and a formula that says so. Never 100 %, never a
  ZeroDivisionError.
- Arithmetic that decides something (quantile ranks, error budgets, burn rates, scores) is done
  in exact fractions on the decimals as written (a target of 0.999 is 999/1000, not the binary
  float nearest to it) and rounded once at the end, so a burn rate of exactly 14.4 pages.

docs/slis.md defines each figure for auditors; tests/posture/test_sli.py checks hand-computed
examples.
"""

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from itertools import pairwise
from typing import Final, Literal, TypedDict

Direction = Literal["at_least", "at_most"]
Alert = Literal["page", "ticket", "ok", "no data"]

# Fixed histogram upper bounds. Bucket i counts values v with bounds[i-1] < v <= bounds[i]
# (bucket 0: v <= bounds[0]); one more bucket, index len(bounds), counts v > bounds[-1].
# Rollup tables have one column per bucket: changing a tuple needs a migration and a rebuild.
# The default targets (10 and 50 ms, 30 minutes, 300 seconds) are bounds on purpose: a quantile
# compared with a target that is a bound is decided exactly, not within a bucket.
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000,
)  # fmt: skip
TTD_BOUNDS_SECONDS: tuple[float, ...] = (
    10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400,
)  # fmt: skip
LEAD_TIME_BOUNDS_MINUTES: tuple[float, ...] = (
    1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 1440, 10080,
)  # fmt: skip

# Which way each SLI is good. Targets themselves are data (per SLI and scope), not code.
SLI_DIRECTION: dict[str, Direction] = {
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

NO_DATA: Final = "no data"


class FigureDict(TypedDict):
    sli: str
    name: str
    value: float | None
    unit: str
    numerator: float | None
    denominator: float | None
    formula: str
    overflow: bool


@dataclass(frozen=True)
class Figure:
    """One computed indicator with the counts behind it.

    For ratios, numerator / denominator = value. For histogram quantiles, numerator is the rank
    of the observation read ceil(q * n) and denominator the number of observations n. `overflow`
    is True when that observation lies above the last finite bound: value is then only a lower
    bound (the formula says "> X") and meets_target never passes it against an "at_most" target.
    """

    sli: str
    name: str
    value: float | None
    unit: str
    numerator: float | None
    denominator: float | None
    formula: str
    overflow: bool = False

    def as_dict(self) -> FigureDict:
        return FigureDict(**asdict(self))


# ---------------------------------------------------------------------------------------------
# Number formatting for formula text


def _number(x: float) -> str:
    """1234 -> "1,234"; 7.5 -> "7.5"; 2.16666 -> "2.167"."""
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.3f}".rstrip("0").rstrip(".")


def _percent(ratio: float) -> str:
    """0.021729 -> "2.173 %"; more digits where 3 would round a miss up to 100 % (or 0 %)."""
    for digits in range(3, 10):
        text = f"{ratio * 100:.{digits}f}".rstrip("0").rstrip(".")
        if text not in ("100", "0") or ratio in (0, 1):
            break
    return f"{text} %"


def _decimal(x: float) -> Fraction:
    """The exact value of x as written in decimal (0.999 -> 999/1000)."""
    if isinstance(x, int):
        return Fraction(x)
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {x!r}")
    return Fraction(str(x))


def _check_count(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Histograms


def histogram_bucket(value: float, bounds: Sequence[float]) -> int:
    """Index of the first bound >= value; len(bounds) (the overflow bucket) above the last.

    On the ingest path: bounds are trusted to be strictly increasing (the shipped tuples are
    checked at import).
    """
    if value != value:  # NaN compares false with everything and would land in bucket 0
        raise ValueError("cannot bucket NaN")
    return bisect_left(bounds, value)


def _check_histogram(counts: Sequence[int], bounds: Sequence[float]) -> None:
    if not all(math.isfinite(b) for b in bounds) or any(b >= c for b, c in pairwise(bounds)):
        raise ValueError("histogram bounds must be finite and strictly increasing")
    if len(counts) != len(bounds) + 1:
        raise ValueError(
            f"a histogram over {len(bounds)} bounds has {len(bounds) + 1} counts "
            f"(the last one for values above the last bound), got {len(counts)}"
        )
    for count in counts:
        _check_count("a histogram count", count)


for _bounds in (LATENCY_BOUNDS_MS, TTD_BOUNDS_SECONDS, LEAD_TIME_BOUNDS_MINUTES):
    _check_histogram([0] * (len(_bounds) + 1), _bounds)


@dataclass(frozen=True)
class _QuantileRead:
    bucket: int
    rank: int
    observations: int


def _quantile_read(
    counts: Sequence[int], bounds: Sequence[float], q: float
) -> _QuantileRead | None:
    _check_histogram(counts, bounds)
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q!r}")
    observations = sum(counts)
    if observations == 0:
        return None
    # Nearest rank in exact arithmetic: ceil(0.07 x 100) is 7, but 0.07 * 100 is 7.000000000000001.
    rank = math.ceil(_decimal(q) * observations)
    seen = 0
    for bucket, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return _QuantileRead(bucket=bucket, rank=rank, observations=observations)
    raise AssertionError("unreachable: rank <= observations")


def histogram_quantile(counts: Sequence[int], bounds: Sequence[float], q: float) -> float | None:
    """Upper bound of the bucket holding the observation of rank ceil(q * n) (nearest rank).

    The true q-quantile lies in that bucket, so the answer is at most one bucket too high and
    never too low. The overflow bucket answers with the last finite bound (a lower bound then).
    None when there are no observations.
    """
    read = _quantile_read(counts, bounds, q)
    if read is None:
        return None
    return float(bounds[min(read.bucket, len(bounds) - 1)])


def _quantile_label(q: float) -> str:
    """0.95 -> "p95", 0.999 -> "p99.9"."""
    return "p" + _number(float(_decimal(q) * 100))


def _bucket_text(bucket: int, bounds: Sequence[float], unit: str) -> str:
    if bucket == 0:
        return f"bucket <= {_number(bounds[0])} {unit}"
    if bucket == len(bounds):
        return f"the overflow bucket (> {_number(bounds[-1])} {unit})"
    return f"bucket ({_number(bounds[bucket - 1])}, {_number(bounds[bucket])}] {unit}"


def _quantile_figure(
    *,
    sli: str,
    what: str,
    observed: str,
    counts: Sequence[int],
    bounds: Sequence[float],
    q: float,
    unit: str,
) -> Figure:
    name = f"{what} {_quantile_label(q)}"
    read = _quantile_read(counts, bounds, q)
    if read is None:
        return Figure(
            sli=sli,
            name=name,
            value=None,
            unit=unit,
            numerator=None,
            denominator=0,
            formula=f"{name}: {NO_DATA} (0 {observed} in the window)",
        )
    overflow = read.bucket == len(bounds)
    value = float(bounds[-1] if overflow else bounds[read.bucket])
    relation = ">" if overflow else "="
    formula = (
        f"{name} {relation} {_number(value)} {unit}: rank ceil({q} * "
        f"{_number(read.observations)}) = {_number(read.rank)} of {_number(read.observations)} "
        f"{observed} falls in {_bucket_text(read.bucket, bounds, unit)}"
    )
    return Figure(
        sli=sli,
        name=name,
        value=value,
        unit=unit,
        numerator=read.rank,
        denominator=read.observations,
        formula=formula,
        overflow=overflow,
    )


# ---------------------------------------------------------------------------------------------
# Ratios


def _ratio_figure(
    *,
    sli: str,
    name: str,
    numerator: float,
    denominator: float,
    counted: str,
    detail: str = "",
    note: str = "",
) -> Figure:
    """A ratio figure; `counted` reads "denies / decisions", `detail` how the counts add up."""
    _check_count(f"{name} numerator", numerator)
    _check_count(f"{name} denominator", denominator)
    if numerator > denominator:
        raise ValueError(f"{name}: numerator {numerator} exceeds denominator {denominator}")
    suffix = f" ({note})" if note else ""
    if denominator == 0:
        return Figure(
            sli=sli,
            name=name,
            value=None,
            unit="ratio",
            numerator=numerator,
            denominator=denominator,
            formula=f"{counted} = {detail}0 / 0: {NO_DATA}{suffix}",
        )
    value = numerator / denominator
    return Figure(
        sli=sli,
        name=name,
        value=value,
        unit="ratio",
        numerator=numerator,
        denominator=denominator,
        formula=(
            f"{counted} = {detail}{_number(numerator)} / {_number(denominator)} = "
            f"{_percent(value)}{suffix}"
        ),
    )


# ---------------------------------------------------------------------------------------------
# M1 to M10


def decision_latency(*, counts: Sequence[int], quantile: float) -> Figure:
    """M1: a quantile (0.5, 0.95, 0.99) of decision latency from a LATENCY_BOUNDS_MS histogram."""
    return _quantile_figure(
        sli="M1",
        what="decision latency",
        observed="decisions",
        counts=counts,
        bounds=LATENCY_BOUNDS_MS,
        q=quantile,
        unit="ms",
    )


def enforcement_success(*, enforced: int, expected: int) -> Figure:
    """M2: decisions enforced as decided / decisions that were to be enforced."""
    return _ratio_figure(
        sli="M2",
        name="enforcement success rate",
        numerator=enforced,
        denominator=expected,
        counted="decisions enforced as decided / decisions to enforce",
    )


def deny_rate(*, denies: int, decisions: int) -> Figure:
    """M3: denies / decisions."""
    return _ratio_figure(
        sli="M3",
        name="deny rate",
        numerator=denies,
        denominator=decisions,
        counted="denies / decisions",
    )


def false_positive_rate(*, false_positives: int, triaged: int) -> Figure:
    """M4: denies triaged as false positive / triaged denies."""
    return _ratio_figure(
        sli="M4",
        name="false-positive rate",
        numerator=false_positives,
        denominator=triaged,
        counted="denies triaged as false positive / triaged denies",
    )


def deployment_lead_time(*, counts: Sequence[int], quantile: float) -> Figure:
    """M5: a quantile of activation - commit time from a LEAD_TIME_BOUNDS_MINUTES histogram."""
    return _quantile_figure(
        sli="M5",
        what="deployment lead time",
        observed="deployments",
        counts=counts,
        bounds=LEAD_TIME_BOUNDS_MINUTES,
        q=quantile,
        unit="minutes",
    )


def deployment_lead_time_mean(*, total_minutes: float, deployments: int) -> Figure:
    """M5, mean variant: sum of lead times / deployments (exact, no bucket error)."""
    name = "deployment lead time mean"
    if not math.isfinite(total_minutes):
        raise ValueError(f"total_minutes must be finite, got {total_minutes!r}")
    _check_count("deployments", deployments)
    counted = "sum of (activation - commit) / deployments"
    if deployments == 0:
        return Figure(
            sli="M5",
            name=name,
            value=None,
            unit="minutes",
            numerator=total_minutes,
            denominator=0,
            formula=f"{counted} = {_number(total_minutes)} min / 0: {NO_DATA}",
        )
    value = total_minutes / deployments
    return Figure(
        sli="M5",
        name=name,
        value=value,
        unit="minutes",
        numerator=total_minutes,
        denominator=deployments,
        formula=(
            f"{counted} = {_number(total_minutes)} min / {_number(deployments)} = "
            f"{_number(value)} minutes"
        ),
    )


def policy_coverage(*, covered: int, total: int) -> Figure:
    """M6: resources with an enforcement hook / resources."""
    return _ratio_figure(
        sli="M6",
        name="policy coverage",
        numerator=covered,
        denominator=total,
        counted="resources with an enforcement hook / resources",
    )


def remediation_success(*, succeeded: int, attempts: int) -> Figure:
    """M7: successful remediations / remediation attempts."""
    return _ratio_figure(
        sli="M7",
        name="remediation success rate",
        numerator=succeeded,
        denominator=attempts,
        counted="successful remediations / attempts",
    )


def audit_completeness(*, stored: int, missing_in_transit: int, dropped_at_source: int) -> Figure:
    """M8: stored / (stored + missing in transit + dropped at source).

    missing_in_transit: gaps in the sources' sequence numbers (emitted, never received);
    dropped_at_source: events the sources report they could not send.
    """
    for name, count in (("missing_in_transit", missing_in_transit), ("dropped", dropped_at_source)):
        _check_count(name, count)
    emitted = stored + missing_in_transit + dropped_at_source
    return _ratio_figure(
        sli="M8",
        name="audit completeness",
        numerator=stored,
        denominator=emitted,
        counted="events stored / (stored + missing in transit + dropped at source)",
        detail=(
            f"{_number(stored)} / ({_number(stored)} + {_number(missing_in_transit)} + "
            f"{_number(dropped_at_source)}) = "
        ),
    )


def engine_availability(*, intervals_seen: int, intervals_expected: int) -> Figure:
    """M9: heartbeat intervals seen / intervals expected, seen capped at expected.

    More intervals than expected (clock jitter, a restart that re-sent a beat) is full
    availability, never more than 100 %.
    """
    _check_count("intervals_seen", intervals_seen)
    seen = min(intervals_seen, intervals_expected)
    note = ""
    if seen < intervals_seen:
        note = (
            f"{_number(intervals_seen)} seen, capped at the {_number(intervals_expected)} expected"
        )
    return _ratio_figure(
        sli="M9",
        name="engine availability",
        numerator=seen,
        denominator=intervals_expected,
        counted="heartbeat intervals seen / intervals expected",
        note=note,
    )


def time_to_detect(*, counts: Sequence[int], quantile: float) -> Figure:
    """M10: a quantile of detected - occurred from a TTD_BOUNDS_SECONDS histogram."""
    return _quantile_figure(
        sli="M10",
        what="violation time-to-detect",
        observed="violations",
        counts=counts,
        bounds=TTD_BOUNDS_SECONDS,
        q=quantile,
        unit="seconds",
    )


# ---------------------------------------------------------------------------------------------
# SLOs: targets, error budgets, burn rates, alerts


def meets_target(*, figure: Figure, target: float, direction: Direction) -> bool | None:
    """Whether a figure meets its target, inclusive at the boundary; None when it has no data.

    An overflow quantile (value is only a lower bound) never meets an "at_most" target.
    """
    if direction not in ("at_least", "at_most"):
        raise ValueError(f"direction must be 'at_least' or 'at_most', got {direction!r}")
    if figure.value is None:
        return None
    if direction == "at_least":
        return figure.value >= target
    if figure.overflow:
        return False
    return figure.value <= target


def _budget_fraction(target: float) -> Fraction:
    """1 - target, exactly as written (0.999 -> 1/1000)."""
    if not 0 < target <= 1:
        raise ValueError(f"an SLO target must be in (0, 1], got {target!r}")
    return 1 - _decimal(target)


class BudgetDict(TypedDict):
    target: float
    good: float
    total: float
    bad: float
    allowed_bad: float | None
    spent: float | None
    remaining: float | None
    exhausted: bool | None
    formula: str


@dataclass(frozen=True)
class BudgetResult:
    """Error budget over one window.

    allowed_bad = (1 - target) * total; spent = bad / allowed_bad (1.0 = all of it);
    remaining = 1 - spent (negative when overspent). With a 100 % target the budget is zero:
    spent is 0 with no bad events, else infinite (as_dict writes null; exhausted says True).
    All None when total is 0 (no data).
    """

    target: float
    good: float
    total: float
    bad: float
    allowed_bad: float | None
    spent: float | None
    remaining: float | None
    exhausted: bool | None
    formula: str

    def as_dict(self) -> BudgetDict:
        def finite(x: float | None) -> float | None:
            return x if x is None or math.isfinite(x) else None

        fields = asdict(self) | {"spent": finite(self.spent), "remaining": finite(self.remaining)}
        return BudgetDict(**fields)


def error_budget(*, good: float, total: float, target: float) -> BudgetResult:
    """The error budget of `total` events at `target`, and how much `good` left of it."""
    budget = _budget_fraction(target)
    _check_count("good", good)
    _check_count("total", total)
    if good > total:
        raise ValueError(f"good ({good}) exceeds total ({total})")
    bad = total - good
    if total == 0:
        return BudgetResult(
            target=target,
            good=good,
            total=total,
            bad=bad,
            allowed_bad=None,
            spent=None,
            remaining=None,
            exhausted=None,
            formula=f"error budget at {_percent(target)}: {NO_DATA} (0 events)",
        )
    allowed = _decimal(total) * budget
    bad_exact = _decimal(total) - _decimal(good)
    # A 100 % target allows no bad event: one is an infinite overspend.
    spent = float(bad_exact / allowed) if allowed else (math.inf if bad_exact else 0.0)
    remaining = 1 - spent
    formula = (
        f"allowed bad = (1 - {_percent(target)}) * {_number(total)} = {_number(float(allowed))}; "
        f"bad = {_number(total)} - {_number(good)} = {_number(bad)}; "
    )
    if math.isfinite(spent):
        formula += (
            f"spent = {_number(bad)} / {_number(float(allowed))} = {_percent(spent)}, "
            f"remaining {_percent(remaining)}"
        )
    else:
        formula += "a zero budget: any bad event exhausts it"
    return BudgetResult(
        target=target,
        good=good,
        total=total,
        bad=bad,
        allowed_bad=float(allowed),
        spent=spent,
        remaining=remaining,
        exhausted=spent >= 1,
        formula=formula,
    )


def burn_rate(*, bad: float, total: float, target: float) -> float | None:
    """(bad / total) / (1 - target): how many times faster than sustainable the budget burns.

    1.0 spends exactly the budget over the SLO period. None when total is 0. With a 100 %
    target: 0.0 without bad events, else infinity (it pages).
    """
    budget = _budget_fraction(target)
    _check_count("bad", bad)
    _check_count("total", total)
    if bad > total:
        raise ValueError(f"bad ({bad}) exceeds total ({total})")
    if total == 0:
        return None
    if budget == 0:
        return 0.0 if bad == 0 else math.inf
    return float(_decimal(bad) / (_decimal(total) * budget))


@dataclass(frozen=True)
class BurnAlertRule:
    """One row of the SRE workbook's Table 5-8 (30-day SLO period)."""

    severity: Literal["page", "ticket"]
    long_window: str
    short_window: str
    burn_rate: float
    budget_consumed: float  # share of a 30-day budget spent in the long window at that rate


# The SRE workbook, chapter 5 "Alerting on SLOs", Table 5-8 (multiwindow, multi-burn-rate):
# threshold = budget consumed * SLO period / long window, e.g. 2 % * 720 h / 1 h = 14.4.
BURN_ALERT_RULES: tuple[BurnAlertRule, ...] = (
    BurnAlertRule(
        severity="page", long_window="1h", short_window="5m", burn_rate=14.4, budget_consumed=0.02
    ),
    BurnAlertRule(
        severity="page", long_window="6h", short_window="30m", burn_rate=6, budget_consumed=0.05
    ),
    BurnAlertRule(
        severity="ticket", long_window="3d", short_window="6h", burn_rate=1, budget_consumed=0.10
    ),
)


def _fires(long: float | None, short: float | None, threshold: float) -> bool:
    """Both windows at or over the threshold; a short window not given does not veto."""
    if long is None or long < threshold:
        return False
    return short is None or short >= threshold


def burn_alert(
    *,
    burn_1h: float | None,
    burn_6h: float | None,
    burn_5m: float | None = None,
    burn_30m: float | None = None,
    burn_3d: float | None = None,
) -> Alert:
    """Multiwindow, multi-burn-rate alert state (SRE workbook, "Alerting on SLOs", Table 5-8).

    page:   1h >= 14.4 and 5m >= 14.4, or 6h >= 6 and 30m >= 6;
    ticket: 3d >= 1 and 6h >= 1. Without a 3-day burn rate, 6h >= 1 alone opens a ticket.
    A short window (5m, 30m) that is None does not veto: the long window decides alone.
    "no data" when neither 1h nor 6h has data.
    """
    if burn_1h is None and burn_6h is None:
        return NO_DATA
    fast, slow, ticket = BURN_ALERT_RULES
    if _fires(burn_1h, burn_5m, fast.burn_rate) or _fires(burn_6h, burn_30m, slow.burn_rate):
        return "page"
    # The workbook's ticket pair is 3d (long) and 6h (short); 6h is always computed here, so it
    # must fire and 3d, when given, may veto.
    if _fires(burn_6h, burn_3d, ticket.burn_rate):
        return "ticket"
    return "ok"


# ---------------------------------------------------------------------------------------------
# Frameworks: control status and compliance score


def rule_meets_targets(*, slo_results: Sequence[bool | None]) -> bool | None:
    """One rule's verdict from its SLOs' meets_target results.

    False if any SLO with data misses; True if at least one has data and none misses; None
    (no data) if none has data.
    """
    if any(result is False for result in slo_results):
        return False
    if any(result is True for result in slo_results):
        return True
    return None


class ControlStatusDict(TypedDict):
    control: str
    rules: int
    with_data: int
    passing: int
    failing: int
    no_data: int
    share: float | None
    formula: str


@dataclass(frozen=True)
class ControlStatus:
    """A control's rules: how many meet target, of those with data; no-data rules apart."""

    control: str
    passing: int
    failing: int
    no_data: int
    share: float | None
    formula: str

    @property
    def rules(self) -> int:
        return self.passing + self.failing + self.no_data

    @property
    def with_data(self) -> int:
        return self.passing + self.failing

    def as_dict(self) -> ControlStatusDict:
        return ControlStatusDict(**asdict(self), rules=self.rules, with_data=self.with_data)


def control_status(*, rule_results: Sequence[bool | None], control: str = "") -> ControlStatus:
    """share = rules meeting target / rules with data. Rules without data are counted apart."""
    passing = sum(1 for result in rule_results if result is True)
    failing = sum(1 for result in rule_results if result is False)
    no_data = len(rule_results) - passing - failing
    with_data = passing + failing
    without = f"; rules without data, not counted: {_number(no_data)}" if no_data else ""
    if with_data == 0:
        return ControlStatus(
            control=control,
            passing=0,
            failing=0,
            no_data=no_data,
            share=None,
            formula=f"rules meeting target / rules with data = 0 / 0: {NO_DATA}{without}",
        )
    share = passing / with_data
    return ControlStatus(
        control=control,
        passing=passing,
        failing=failing,
        no_data=no_data,
        share=share,
        formula=(
            f"rules meeting target / rules with data = {_number(passing)} / "
            f"{_number(with_data)} = {_percent(share)}{without}"
        ),
    )


def compliance_score(*, controls: Sequence[ControlStatus]) -> Figure:
    """Mean of the control shares over the controls that have data (each control weighs 1).

    Returned as a Figure (sli "score", unit "ratio"): numerator is the sum of the shares,
    denominator the number of controls with data.
    """
    counted = [c for c in controls if c.share is not None]
    skipped = len(controls) - len(counted)
    without = f"; controls without data, not counted: {_number(skipped)}" if skipped else ""
    name = "compliance score"
    if not counted:
        return Figure(
            sli="score",
            name=name,
            value=None,
            unit="ratio",
            numerator=0,
            denominator=0,
            formula=f"mean of control shares over 0 controls with data: {NO_DATA}{without}",
        )
    total = sum((Fraction(c.passing, c.with_data) for c in counted), Fraction(0))
    value = float(total / len(counted))
    terms = " + ".join(f"{c.passing}/{c.with_data}" for c in counted)
    return Figure(
        sli="score",
        name=name,
        value=value,
        unit="ratio",
        numerator=float(total),
        denominator=len(counted),
        formula=(
            f"mean of control shares (rules meeting target / rules with data) = "
            f"({terms}) / {len(counted)} = {_percent(value)}{without}"
        ),
    )
