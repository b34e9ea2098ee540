"""Reads for the on-call dashboard: now and the last hours, what is wrong first.

Hours come from the hourly rollups, and an engine silent for days from HeartbeatDaily. Four
reads need the ledger itself, each bounded by a time range on audit_event.occurred_at: deny rates
in 5-minute buckets (the last 6 hours), the latest denies' reasons (at most REASON_SAMPLE rows;
the partial index event_deny_occurred_idx), the last heartbeat of each engine (the last two
intervals only; event_heartbeat_occurred_idx), and remediations per resource (the window;
event_remediation_occurred_idx).
"""

import functools
import operator
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from typing import Literal

from django.db.models import Count, F, Max, Min, Q, Sum
from django.db.models.functions import Trunc

from audit.models import Event, EventKind, Source, SourceKind
from posture import sli
from posture.models import DecisionHourly, HeartbeatDaily, HeartbeatHourly, SequenceHourly
from posture.models.rollups import LATENCY_COLUMNS
from posture.selectors import SliScope, Target, Window, targets_for

Level = Literal["critical", "warning", "info", "ok"]
LEVEL_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2, "ok": 3}

BUCKET_MINUTES = 5
RECENT_HOURS = 6  # the 5-minute deny-rate buckets and the burn rates cover this much
REASON_SAMPLE = 5000
LOOP_REMEDIATIONS = 3  # remediations of one resource in the window that make a loop
TOP = 10


# ---------------------------------------------------------------------------------------------
# Deny rate and its burn rate


@dataclass(frozen=True)
class DenyBucket:
    start: datetime
    decisions: int
    denies: int

    @property
    def rate(self) -> float | None:
        return self.denies / self.decisions if self.decisions else None


def _five_minutes_up(moment: datetime) -> datetime:
    """The end of the 5-minute bucket that holds `moment`."""
    floor = moment.replace(second=0, microsecond=0)
    floor -= timedelta(minutes=floor.minute % BUCKET_MINUTES)
    return floor + timedelta(minutes=BUCKET_MINUTES)


def deny_buckets(*, now: datetime, hours: int = RECENT_HOURS) -> list[DenyBucket]:
    """Decisions and denies in 5-minute buckets over the last `hours`, oldest first.

    Grouped by minute in the database (at most 60 rows an hour) and folded into buckets here.
    """
    end = _five_minutes_up(now)
    start = end - timedelta(hours=hours)
    rows = (
        Event.objects.filter(kind=EventKind.DECISION, occurred_at__gte=start, occurred_at__lt=end)
        .annotate(minute=Trunc("occurred_at", "minute", tzinfo=UTC))
        .values("minute")
        .annotate(n=Count("id"), denies=Count("id", filter=Q(outcome="deny")))
        .order_by()
    )
    size = timedelta(minutes=BUCKET_MINUTES)
    count = int((end - start) / size)
    decisions, denies = [0] * count, [0] * count
    for row in rows:
        i = int((row["minute"].astimezone(UTC) - start) / size)
        if 0 <= i < count:
            decisions[i] += row["n"]
            denies[i] += row["denies"]
    return [DenyBucket(start + i * size, decisions[i], denies[i]) for i in range(count)]


def deny_hours(*, window: Window) -> list[DenyBucket]:
    """Decisions and denies by hour from the hourly rollup, one bucket per hour of the window."""
    rows = (
        DecisionHourly.objects.filter(bucket__gte=window.start, bucket__lt=window.end)
        .values("bucket")
        .annotate(n=Sum("decisions"), denies=Sum("decisions", filter=Q(outcome="deny")))
        .order_by()
    )
    by_hour = {row["bucket"].astimezone(UTC): row for row in rows}
    buckets = []
    for hour in window.buckets():
        row = by_hour.get(hour, {})
        buckets.append(DenyBucket(hour, row.get("n") or 0, row.get("denies") or 0))
    return buckets


@dataclass(frozen=True)
class DenyBurn:
    """Burn rates of the deny-rate SLO (an "at most" target) over the multiwindow pairs."""

    target: float | None
    rates: dict[str, float | None]
    alert: sli.Alert
    deny_rate_1h: float | None


# The last so many 5-minute buckets make each burn-rate window.
_BURN_WINDOWS = {"5m": 1, "30m": 6, "1h": 12, "6h": 72}


def deny_burn(buckets: list[DenyBucket], *, target: Target | None) -> DenyBurn:
    """Burn rates from the last 6 hours of 5-minute buckets (newest last).

    A deny rate "at most T" is an event SLO whose good events are the non-denied decisions at
    a target of 1 - T, so burn = (denies / decisions) / T (posture.sli.burn_rate).
    """
    last_hour = buckets[-_BURN_WINDOWS["1h"] :]
    decisions_1h = sum(b.decisions for b in last_hour)
    rate_1h = sum(b.denies for b in last_hour) / decisions_1h if decisions_1h else None
    if target is None or target.direction != "at_most" or not 0 <= target.target < 1:
        return DenyBurn(None, dict.fromkeys(_BURN_WINDOWS), sli.NO_DATA, rate_1h)
    good_target = float(1 - Fraction(str(target.target)))
    rates = {}
    for name, count in _BURN_WINDOWS.items():
        part = buckets[-count:]
        rates[name] = sli.burn_rate(
            bad=sum(b.denies for b in part),
            total=sum(b.decisions for b in part),
            target=good_target,
        )
    alert = sli.burn_alert(
        burn_1h=rates["1h"], burn_6h=rates["6h"], burn_5m=rates["5m"], burn_30m=rates["30m"]
    )
    return DenyBurn(target.target, rates, alert, rate_1h)


# ---------------------------------------------------------------------------------------------
# What is denied: rules, services, reasons


@dataclass(frozen=True)
class RuleDenies:
    rule_id: int
    policy: str
    name: str
    severity: str
    denies: int

    @property
    def label(self) -> str:
        return (
            f"{self.policy}/{self.name}" if self.policy and self.name else self.policy or self.name
        )


def top_rules_by_denies(*, window: Window, limit: int = TOP) -> list[RuleDenies]:
    rows = (
        DecisionHourly.objects.filter(
            bucket__gte=window.start, bucket__lt=window.end, outcome="deny"
        )
        .values("rule_id", "rule__policy", "rule__name", "rule__severity")
        .annotate(n=Sum(F("decisions") - F("excepted")))
        .filter(n__gt=0)
        .order_by("-n", "rule_id")[:limit]
    )
    return [
        RuleDenies(
            row["rule_id"],
            row["rule__policy"] or "",
            row["rule__name"] or "",
            row["rule__severity"] or "",
            row["n"],
        )
        for row in rows
    ]


def top_services_by_denies(*, window: Window, limit: int = TOP) -> list[tuple[str, int]]:
    rows = (
        DecisionHourly.objects.filter(
            bucket__gte=window.start, bucket__lt=window.end, outcome="deny"
        )
        .values("service")
        .annotate(n=Sum(F("decisions") - F("excepted")))
        .filter(n__gt=0)
        .order_by("-n", "service")[:limit]
    )
    return [(row["service"], row["n"]) for row in rows]


@dataclass(frozen=True)
class Reasons:
    counts: list[tuple[str, int]]
    sampled: int  # denies read (at most REASON_SAMPLE, the newest)


def top_deny_reasons(*, window: Window, limit: int = TOP) -> Reasons:
    """The most frequent reasons among the newest REASON_SAMPLE denies of the window."""
    reasons = (
        Event.objects.filter(
            kind=EventKind.DECISION,
            outcome="deny",
            occurred_at__gte=window.start,
            occurred_at__lt=window.end,
        )
        .order_by("-occurred_at", "-id")
        .values_list("reason", flat=True)[:REASON_SAMPLE]
    )
    counts = Counter(reason or "(no reason given)" for reason in reasons)
    return Reasons(counts.most_common(limit), sum(counts.values()))


# ---------------------------------------------------------------------------------------------
# Engines: latency, heartbeats, completeness


@dataclass(frozen=True)
class SourceLatency:
    source: str
    decisions: int
    p95: sli.Figure
    p99: sli.Figure
    level: Level


def latency_by_source(*, window: Window, target: Target | None) -> list[SourceLatency]:
    """Decision latency p95 and p99 per source (histograms summed over the window), slowest
    first; a p95 over the M1 target is a warning, over four times the target critical."""
    rows = (
        DecisionHourly.objects.filter(bucket__gte=window.start, bucket__lt=window.end)
        .values("source__name")
        .annotate(n=Sum("latency_observed"), **{f"s_{c}": Sum(c) for c in LATENCY_COLUMNS})
        .order_by()
    )
    out = []
    for row in rows:
        counts = [row[f"s_{c}"] or 0 for c in LATENCY_COLUMNS]
        if not sum(counts):
            continue
        p95 = sli.decision_latency(counts=counts, quantile=0.95)
        p99 = sli.decision_latency(counts=counts, quantile=0.99)
        level: Level = "ok"
        if (
            target is not None
            and sli.meets_target(figure=p95, target=target.target, direction="at_most") is False
        ):
            level = "critical" if p95.overflow or p95.value > 4 * target.target else "warning"
        out.append(SourceLatency(row["source__name"] or "", row["n"] or 0, p95, p99, level))
    out.sort(key=lambda s: (LEVEL_ORDER[s.level], -(s.p95.value or 0), s.source))
    return out


@dataclass(frozen=True)
class EngineHeartbeat:
    source: str
    kind: str
    interval_seconds: int
    last_seen: datetime | None  # None: never sent one
    exact: bool  # last_seen is the heartbeat's time, not the start of its rollup slot
    level: Level
    age: str  # "12 min", "3.5 h", "never"


def engine_heartbeats(*, now: datetime) -> list[EngineHeartbeat]:
    """Each engine's last heartbeat. Missing (critical) when older than twice its interval;
    an engine that never sent one is only noted (not every engine sends heartbeats)."""
    sources = list(
        Source.objects.exclude(kind=SourceKind.INTERNAL).values(
            "id", "name", "kind", "heartbeat_interval_seconds"
        )
    )
    if not sources:
        return []
    longest = max(s["heartbeat_interval_seconds"] for s in sources)
    recent = dict(
        Event.objects.filter(
            kind=EventKind.HEARTBEAT,
            occurred_at__gte=now - timedelta(seconds=2 * longest),
            occurred_at__lte=now,
        )
        .values("source_id")
        .annotate(last=Max("occurred_at"))
        .values_list("source_id", "last")
    )
    stale = [s["id"] for s in sources if s["id"] not in recent]
    earlier: dict[int, datetime] = {}
    if stale:
        # The newest hour of each stale source lies in its newest day with heartbeats.
        newest_days = (
            HeartbeatDaily.objects.filter(source_id__in=stale)
            .values("source_id")
            .annotate(day=Max("day"))
            .values_list("source_id", "day")
        )
        in_newest_day = [
            Q(source_id=source_id, bucket__gte=datetime.combine(day, time.min, tzinfo=UTC))
            for source_id, day in newest_days
        ]
        rows = []
        if in_newest_day:
            rows = (
                HeartbeatHourly.objects.filter(functools.reduce(operator.or_, in_newest_day))
                .order_by("bucket")
                .values_list("source_id", "bucket", "slot_seconds", "slots_seen")
            )
        # In bucket order: the last row of each source is its newest hour.
        for source_id, bucket, slot, seen in rows:
            # The start of the newest slot that saw one: the heartbeat came in that slot.
            earlier[source_id] = bucket.astimezone(UTC) + timedelta(
                seconds=slot * max(seen.bit_length() - 1, 0)
            )
    out = []
    for s in sources:
        interval = s["heartbeat_interval_seconds"]
        last, exact = recent.get(s["id"]), True
        if last is None:
            last, exact = earlier.get(s["id"]), False
        if last is None:
            level: Level = "info"
        elif (now - last).total_seconds() > 2 * interval:
            level = "critical"
        else:
            level = "ok"
        age = duration_text(None if last is None else (now - last).total_seconds())
        out.append(EngineHeartbeat(s["name"], s["kind"], interval, last, exact, level, age))
    out.sort(key=lambda e: (LEVEL_ORDER[e.level], e.source))
    return out


@dataclass(frozen=True)
class CompletenessGap:
    source: str
    epoch: str
    expected: int
    stored: int
    level: Level

    @property
    def missing(self) -> int:
        return self.expected - self.stored

    @property
    def completeness(self) -> float:
        return self.stored / self.expected if self.expected else 1.0


def completeness_gaps(*, window: Window, target: Target | None) -> list[CompletenessGap]:
    """Sources whose own sequence numbers have gaps in the window (events lost on the way):
    critical below the M8 target, else a warning."""
    rows = (
        SequenceHourly.objects.filter(bucket__gte=window.start, bucket__lt=window.end)
        .values("source__name", "epoch")
        .annotate(low=Min("seq_min"), high=Max("seq_max"), n=Sum("stored"))
        .order_by()
    )
    gaps = []
    for row in rows:
        expected = row["high"] - row["low"] + 1
        if row["n"] >= expected:
            continue
        stored = row["n"]
        level: Level = "warning"
        if target is not None and stored / expected < target.target:
            level = "critical"
        gaps.append(
            CompletenessGap(row["source__name"] or "", row["epoch"], expected, stored, level)
        )
    gaps.sort(key=lambda g: (LEVEL_ORDER[g.level], -g.missing, g.source))
    return gaps


# ---------------------------------------------------------------------------------------------
# Remediations


@dataclass
class ResourceRemediations:
    source: str
    resource: str
    total: int = 0
    failed: int = 0
    last: datetime | None = None
    rules: set[str] = field(default_factory=set)

    @property
    def loop(self) -> bool:
        return self.total >= LOOP_REMEDIATIONS

    @property
    def level(self) -> Level:
        if self.loop and self.failed:
            return "critical"
        return "warning" if self.loop or self.failed else "ok"


def remediation_problems(*, window: Window, limit: int = 20) -> list[ResourceRemediations]:
    """Resources with failed remediations, or remediated LOOP_REMEDIATIONS times or more in
    the window (a loop: something undoes every fix), worst first."""
    rows = (
        Event.objects.filter(
            kind=EventKind.REMEDIATION,
            occurred_at__gte=window.start,
            occurred_at__lt=window.end,
        )
        .values("source__name", "resource", "status", "rule")
        .annotate(n=Count("id"), last=Max("occurred_at"))
        .order_by()
    )
    by_resource: dict[tuple[str, str], ResourceRemediations] = {}
    for row in rows:
        key = (row["source__name"], row["resource"] or "")
        item = by_resource.setdefault(key, ResourceRemediations(*key))
        item.total += row["n"]
        if row["status"] == "failed":
            item.failed += row["n"]
        if row["rule"]:
            item.rules.add(row["rule"])
        if item.last is None or row["last"] > item.last:
            item.last = row["last"]
    problems = [item for item in by_resource.values() if item.level != "ok"]
    problems.sort(key=lambda r: (LEVEL_ORDER[r.level], -r.total, r.source, r.resource))
    return problems[:limit]


# ---------------------------------------------------------------------------------------------
# Everything the page shows


@dataclass(frozen=True)
class Problem:
    level: Level
    title: str
    detail: str
    anchor: str  # the panel that explains it


@dataclass
class OncallReport:
    window: Window
    now: datetime
    targets: dict[str, Target]
    recent: list[DenyBucket]
    hourly: list[DenyBucket] | None  # None when the window is the recent hours themselves
    burn: DenyBurn
    rules: list[RuleDenies]
    services: list[tuple[str, int]]
    reasons: Reasons
    latency: list[SourceLatency]
    heartbeats: list[EngineHeartbeat]
    gaps: list[CompletenessGap]
    remediations: list[ResourceRemediations]
    problems: list[Problem] = field(default_factory=list)


def oncall_report(*, window: Window, now: datetime) -> OncallReport:
    """All panels of the on-call dashboard for a window ending now, with its problems listed
    worst first."""
    targets = targets_for(SliScope())
    recent = deny_buckets(now=now)
    report = OncallReport(
        window=window,
        now=now,
        targets=targets,
        recent=recent,
        hourly=deny_hours(window=window)
        if window.end - window.start > timedelta(hours=6)
        else None,
        burn=deny_burn(recent, target=targets.get("M3")),
        rules=top_rules_by_denies(window=window),
        services=top_services_by_denies(window=window),
        reasons=top_deny_reasons(window=window),
        latency=latency_by_source(window=window, target=targets.get("M1")),
        heartbeats=engine_heartbeats(now=now),
        gaps=completeness_gaps(window=window, target=targets.get("M8")),
        remediations=remediation_problems(window=window),
    )
    report.problems = report_problems(report)
    return report


def report_problems(report: OncallReport) -> list[Problem]:
    """What needs attention, worst first (pure: reads the panels already computed)."""
    problems = []
    burn = report.burn
    if burn.alert in ("page", "ticket"):
        rates = ", ".join(
            f"{name} {rate:.1f} times" for name, rate in burn.rates.items() if rate is not None
        )
        problems.append(
            Problem(
                "critical" if burn.alert == "page" else "warning",
                f"Deny rate burning its error budget ({burn.alert})",
                f"burn rates {rates} against a target of at most {burn.target:.2%}",
                "deny-rate",
            )
        )
    for engine in report.heartbeats:
        if engine.level == "critical":
            problems.append(
                Problem(
                    "critical",
                    f"No heartbeat from {engine.source}",
                    f"last seen {engine.age} ago; expected every {engine.interval_seconds} s",
                    "heartbeats",
                )
            )
    for gap in report.gaps:
        problems.append(
            Problem(
                gap.level,
                f"Events lost from {gap.source}",
                f"{gap.missing:,} of {gap.expected:,} sequence numbers missing",
                "completeness",
            )
        )
    for item in report.remediations:
        what = []
        if item.loop:
            what.append(f"remediated {item.total} times")
        if item.failed:
            what.append(f"{item.failed} failed")
        problems.append(
            Problem(
                item.level,
                f"Remediation {'loop' if item.loop else 'failures'} on {item.resource or '?'}",
                f"{item.source}: {', '.join(what)}",
                "remediations",
            )
        )
    for latency in report.latency:
        if latency.level in ("critical", "warning"):
            problems.append(
                Problem(
                    latency.level,
                    f"Slow decisions on {latency.source}",
                    f"p95 {_ms(latency.p95)}, p99 {_ms(latency.p99)}",
                    "latency",
                )
            )
    problems.sort(key=lambda p: LEVEL_ORDER[p.level])
    return problems


def _ms(figure: sli.Figure) -> str:
    return f"{'> ' if figure.overflow else ''}{figure.value:g} ms"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
