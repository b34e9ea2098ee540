"""Reads of the posture domain: SLIs for a window and scope, framework status, summaries.

Everything here reads the rollups (posture.models.rollups), never the raw ledger, and hands the
summed counts to the pure formulas of posture.sli. tests/posture/test_slis_raw.py computes the
same figures straight from the events and checks they agree.
"""

import bisect
import dataclasses
import functools
import itertools
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from django.db import connection
from django.db.models import BigIntegerField, Case, Count, F, Func, Max, Min, Q, Sum, When
from django.db.models.functions import Cast, Trunc

from audit.models import Source, SourceKind
from posture import sli
from posture.models import (
    Control,
    DecisionDaily,
    DecisionHourly,
    DeploymentHourly,
    Framework,
    HeartbeatDaily,
    HeartbeatHourly,
    InventoryHourly,
    MappingVersion,
    RemediationHourly,
    RuleControl,
    RuleDaily,
    Scope,
    SequenceDaily,
    SequenceHourly,
    SloTarget,
    TriageState,
    ViolationEpisode,
    ViolationHourly,
)
from posture.models.rollups import (
    LATENCY_COLUMNS,
    LEAD_TIME_COLUMNS,
    RULE_DAILY_COLUMNS,
    TTD_COLUMNS,
)
from posture.rollups import rollup_lag, slot_seconds

DAY = "day"
HOUR = "hour"
QUANTILES = (0.5, 0.95, 0.99)


# ---------------------------------------------------------------------------------------------
# Windows and scopes


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC, whole days or whole hours; `unit` is the step of its series."""

    start: datetime
    end: datetime
    unit: str

    @property
    def step(self) -> timedelta:
        return timedelta(days=1) if self.unit == DAY else timedelta(hours=1)

    def buckets(self) -> list[datetime]:
        return list(_buckets(self))

    def labels(self) -> tuple[str, ...]:
        """Each bucket's time in ISO 8601, as series points name them."""
        return _labels(self)

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "unit": self.unit}


# Kept for the windows of the last few requests: a year's series asks for them many times.
@functools.lru_cache(maxsize=64)
def _buckets(window: Window) -> tuple[datetime, ...]:
    count = int((window.end - window.start) / window.step)
    return tuple(window.start + i * window.step for i in range(count))


@functools.lru_cache(maxsize=64)
def _labels(window: Window) -> tuple[str, ...]:
    return tuple(bucket.isoformat() for bucket in _buckets(window))


def window_last(*, days: int = 0, hours: int = 0, now: datetime | None = None) -> Window:
    """The last `days` UTC days (today included) or the last `hours` hours (this one included)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if days:
        end = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=UTC)
        return Window(start=end - timedelta(days=days), end=end, unit=DAY)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return Window(start=end - timedelta(hours=hours), end=end, unit=HOUR)


@dataclass(frozen=True)
class SliScope:
    """Which part of the estate a figure covers; empty fields do not filter."""

    framework: str = ""
    control: str = ""  # "framework-slug:control-code"
    rule: int | None = None
    source: str = ""
    environment: str = ""
    service: str = ""

    def as_dict(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value}


class ScopeUnknown(Exception):
    """A scope names a framework or control that does not exist."""


def mapping_version_current() -> MappingVersion | None:
    return MappingVersion.objects.order_by("-id").first()


def rules_of_control(control: Control, mapping_version: MappingVersion | None) -> set[int]:
    """Rules mapped to a control or to any control under it."""
    codes = [control.pk]
    frontier = [control.pk]
    while frontier:
        frontier = list(Control.objects.filter(parent_id__in=frontier).values_list("pk", flat=True))
        codes += frontier
    return set(
        RuleControl.objects.filter(mapping_version=mapping_version, control_id__in=codes)
        .values_list("rule_id", flat=True)
        .distinct()
    )


def scope_rule_ids(scope: SliScope, mapping_version: MappingVersion | None) -> set[int] | None:
    """The rules a scope covers, or None when it does not narrow the rules."""
    if scope.rule is not None:
        return {scope.rule}
    if scope.control:
        slug, _, code = scope.control.partition(":")
        control = Control.objects.filter(framework__slug=slug, code=code).first()
        if control is None:
            raise ScopeUnknown(f"no control {code!r} in framework {slug!r}")
        return rules_of_control(control, mapping_version)
    if scope.framework:
        if not Framework.objects.filter(slug=scope.framework).exists():
            raise ScopeUnknown(f"no framework {scope.framework!r}")
        return set(
            RuleControl.objects.filter(
                mapping_version=mapping_version, control__framework__slug=scope.framework
            )
            .values_list("rule_id", flat=True)
            .distinct()
        )
    return None


# ---------------------------------------------------------------------------------------------
# Counts: what the rollups hold for a window and scope, by bucket


def _zeros(n: int) -> list[int]:
    return [0] * n


@dataclass
class RuleCounts:
    """Sums of the rule-dimensioned rollups (decisions, violations, remediations, ...)."""

    decisions: int = 0
    denies: int = 0
    enforce_expected: int = 0
    enforce_ok: int = 0
    excepted: int = 0
    excepted_denies: int = 0
    latency: list[int] = field(default_factory=lambda: _zeros(len(LATENCY_COLUMNS)))
    violations_opened: int = 0
    ttd: list[int] = field(default_factory=lambda: _zeros(len(TTD_COLUMNS)))
    remediations_succeeded: int = 0
    remediations_failed: int = 0
    deployments: int = 0
    lead_time: list[int] = field(default_factory=lambda: _zeros(len(LEAD_TIME_COLUMNS)))
    triaged: int = 0
    false_positives: int = 0

    def add(self, other: "RuleCounts") -> None:
        # Field names looked up once (below the class): this runs for every (bucket, rule).
        mine, theirs = self.__dict__, other.__dict__
        for name in _RULE_COUNTS:
            mine[name] += theirs[name]
        for name in _RULE_HISTOGRAMS:
            mine[name][:] = map(operator.add, mine[name], theirs[name])

    def flat(self) -> tuple[int, ...]:
        """The counts in field order, each histogram spread into its buckets: the columns of
        RuleDaily (RULE_DAILY_COLUMNS)."""
        mine = self.__dict__
        values: list[int] = []
        for name, position in _FLAT_POSITIONS:
            if isinstance(position, slice):
                values += mine[name]
            else:
                values.append(mine[name])
        return tuple(values)

    @classmethod
    def from_flat(cls, values: Sequence[int]) -> "RuleCounts":
        """The counts of flat() (or of a RuleDaily row) as RuleCounts."""
        # Built field by field without __init__: this runs for every (day, rule) judged.
        counts = cls.__new__(cls)
        state = dict(zip(_FLAT_SCALARS, _flat_scalars(values), strict=True))
        for name, part in _FLAT_HISTOGRAMS:
            state[name] = list(values[part])
        counts.__dict__.update(state)
        return counts


# The histogram fields (those with a list factory), with their numbers of buckets.
_HISTOGRAM_SIZES = {
    item.name: len(item.default_factory())
    for item in dataclasses.fields(RuleCounts)
    if item.default_factory is not dataclasses.MISSING
}
_RULE_HISTOGRAMS = tuple(_HISTOGRAM_SIZES)
_RULE_COUNTS = tuple(
    item.name for item in dataclasses.fields(RuleCounts) if item.name not in _RULE_HISTOGRAMS
)


def _flat_positions() -> list[tuple[str, int | slice]]:
    """Where each field of RuleCounts sits in its flat() tuple."""
    positions: list[tuple[str, int | slice]] = []
    start = 0
    for item in dataclasses.fields(RuleCounts):
        size = _HISTOGRAM_SIZES.get(item.name)
        positions.append((item.name, start if size is None else slice(start, start + size)))
        start += size or 1
    return positions


_FLAT_POSITIONS = _flat_positions()
_FLAT_SCALARS = tuple(name for name, at in _FLAT_POSITIONS if not isinstance(at, slice))
_flat_scalars = operator.itemgetter(*(at for _, at in _FLAT_POSITIONS if not isinstance(at, slice)))
_FLAT_HISTOGRAMS = tuple((name, at) for name, at in _FLAT_POSITIONS if isinstance(at, slice))
_NO_COUNTS = (0,) * len(RULE_DAILY_COLUMNS)


@dataclass
class SourceCounts:
    """Sums of the source-level rollups (sequence numbers, heartbeats, inventory).

    The spans and snapshots behind seq_expected, dropped and the resources are kept too: a
    longer window merges them rather than adding the sums, so that a gap or a drop between two
    buckets still counts, and coverage is each scope's latest snapshot (_source_window_totals).
    """

    seq_stored: int = 0
    seq_expected: int = 0
    dropped: int = 0
    slots_seen: int = 0
    slots_expected: int = 0
    resources_total: int = 0
    resources_covered: int = 0
    # (source, epoch) -> lowest and highest source_seq seen.
    seq_spans: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    # source -> lowest and highest dropped_total its heartbeats reported.
    drop_spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    # (source, environment, service) -> (observed_at, total, covered) of the latest snapshot.
    snapshots: dict[tuple[int, str, str], tuple[datetime, int, int]] = field(default_factory=dict)


def _bucket_key(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        # A _UtcTrunc bucket comes back from PostgreSQL as the naive UTC time.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


class _UtcTrunc(Trunc):
    """Trunc(field, unit, tzinfo=UTC), its rows read without Django's per-row time zone
    conversion (a cost on every row of a long window): _bucket_key takes the time as the
    database gives it, naive UTC from PostgreSQL, an aware time from SQLite's converter."""

    def __init__(self, field: str, unit: str) -> None:
        super().__init__(field, unit, tzinfo=UTC)

    def get_db_converters(self, connection: object) -> list:
        return self.output_field.get_db_converters(connection)


class _IntSum(Cast):
    """SUM read back as an integer. PostgreSQL sums bigints as numeric, which the driver would
    read into Decimals for Django to turn into ints one by one: a cost on every cell of a long
    window. Cast to bigint, the driver gives ints (SQLite's too), which need no converting."""

    def __init__(self, expression: object) -> None:
        super().__init__(Sum(expression), BigIntegerField())

    def get_db_converters(self, connection: object) -> list:
        return self.output_field.get_db_converters(connection)


def _sums(columns: tuple[str, ...], prefix: str = "") -> dict:
    return {f"{prefix}{column}": _IntSum(column) for column in columns}


def _truncated(moment: datetime, unit: str) -> datetime:
    """The bucket key of a time, what _bucket_key(Trunc(time, unit, tzinfo=UTC)) gives."""
    moment = moment.astimezone(UTC)
    if unit == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return datetime.combine(moment.date(), time.min, tzinfo=UTC)


def rule_counts(
    *, window: Window, scope: SliScope, rule_ids: set[int] | None
) -> dict[tuple[datetime, int], RuleCounts]:
    """Rule-dimensioned sums by (bucket of the window's unit, rule id).

    Whole days over all sources, environments and services are RuleDaily's rows, which hold
    rule_counts_summed() of each day; any other window or scope sums the rollups it needs."""
    if window.unit == DAY and not (scope.source or scope.environment or scope.service):
        return {
            (day, rule_id): RuleCounts.from_flat(values)
            for day, rule_id, values in rule_daily_rows(window=window, rule_ids=rule_ids)
        }
    return rule_counts_summed(window=window, scope=scope, rule_ids=rule_ids)


def rule_daily_rows(
    *, window: Window, rule_ids: set[int] | None
) -> list[tuple[datetime, int, tuple[int, ...]]]:
    """(day, rule id, RuleCounts.flat() values) of each RuleDaily row of a whole-day window."""
    rows = RuleDaily.objects.filter(day__gte=window.start.date(), day__lt=window.end.date())
    if rule_ids is not None:
        rows = rows.filter(rule_id__in=rule_ids)
    days: dict[date, datetime] = {}
    out = []
    for row in rows.values_list("day", "rule_id", *RULE_DAILY_COLUMNS):
        day = days.get(row[0])
        if day is None:
            day = days[row[0]] = _bucket_key(row[0])
        out.append((day, row[1], row[2:]))
    return out


def rule_counts_summed(
    *, window: Window, scope: SliScope, rule_ids: set[int] | None
) -> dict[tuple[datetime, int], RuleCounts]:
    """rule_counts() summed from the decision, violation, remediation, deployment and triage
    rollups (what posture.rollups stores into RuleDaily, a day at a time)."""
    counts: dict[tuple[datetime, int], RuleCounts] = defaultdict(RuleCounts)

    def filtered(queryset, time_field: str, *, has_service: bool = True):
        queryset = queryset.filter(
            **{f"{time_field}__gte": window.start, f"{time_field}__lt": window.end}
        )
        if rule_ids is not None:
            queryset = queryset.filter(rule_id__in=rule_ids)
        if scope.source:
            queryset = queryset.filter(source__name=scope.source)
        if scope.environment:
            queryset = queryset.filter(environment=scope.environment)
        if scope.service and has_service:
            queryset = queryset.filter(service=scope.service)
        return queryset

    def by_bucket(queryset, time_field: str):
        return queryset.annotate(b=_UtcTrunc(time_field, window.unit)).values("b", "rule_id")

    # Decisions: the daily table serves whole-day windows not narrowed to a service.
    # Annotation names differ from the columns: an annotation may not shadow what it sums.
    decision_sums = {
        "n_decisions": _IntSum("decisions"),
        "n_denies": _IntSum(Case(When(outcome="deny", then=F("decisions")), default=0)),
        # M2 leaves decisions covered by an exception out of both sides.
        "n_enforce_expected": _IntSum(F("enforce_expected") - F("excepted_enforce_expected")),
        "n_enforce_ok": _IntSum(F("enforce_ok") - F("excepted_enforce_ok")),
        "n_excepted": _IntSum("excepted"),
        "n_excepted_denies": _IntSum(Case(When(outcome="deny", then=F("excepted")), default=0)),
        **_sums(LATENCY_COLUMNS, prefix="n_"),
    }
    if window.unit == DAY and not scope.service:
        rows = filtered(DecisionDaily.objects, "day", has_service=False).values("day", "rule_id")
        rows = rows.annotate(**decision_sums)
        time_key = "day"
    else:
        rows = by_bucket(filtered(DecisionHourly.objects, "bucket"), "bucket")
        rows = rows.annotate(**decision_sums)
        time_key = "b"
    # Tuples, not dicts: a 90-day read has a row for every day and rule.
    for bucket, rule_id, *sums in rows.values_list(time_key, "rule_id", *decision_sums):
        item = counts[(_bucket_key(bucket), rule_id)]
        decisions, denies, expected, ok, excepted, excepted_denies = sums[:6]
        item.decisions += decisions
        item.denies += denies
        item.enforce_expected += expected
        item.enforce_ok += ok
        item.excepted += excepted
        item.excepted_denies += excepted_denies
        _add_values(item.latency, sums[6:])

    rows = by_bucket(filtered(ViolationHourly.objects, "bucket"), "bucket")
    ttd_sums = _sums(TTD_COLUMNS, prefix="n_")
    rows = rows.annotate(n_opened=_IntSum("opened"), **ttd_sums)
    for bucket, rule_id, opened, *ttd in rows.values_list("b", "rule_id", "n_opened", *ttd_sums):
        item = counts[(_bucket_key(bucket), rule_id)]
        item.violations_opened += opened
        _add_values(item.ttd, ttd)

    rows = by_bucket(filtered(RemediationHourly.objects, "bucket"), "bucket")
    rows = rows.annotate(
        succeeded=_IntSum(Case(When(status="succeeded", then=F("remediations")), default=0)),
        failed=_IntSum(Case(When(status="failed", then=F("remediations")), default=0)),
    )
    for row in rows:
        item = counts[(_bucket_key(row["b"]), row["rule_id"])]
        item.remediations_succeeded += row["succeeded"]
        item.remediations_failed += row["failed"]

    deployments = filtered(DeploymentHourly.objects, "bucket", has_service=False)
    for row in by_bucket(deployments, "bucket").annotate(
        deployments_known=_IntSum(F("deployments") - F("lead_unknown")),
        **_sums(LEAD_TIME_COLUMNS, prefix="n_"),
    ):
        item = counts[(_bucket_key(row["b"]), row["rule_id"])]
        item.deployments += row["deployments_known"]
        _add_histogram(item.lead_time, row, LEAD_TIME_COLUMNS, prefix="n_")

    rows = by_bucket(filtered(TriageState.objects, "occurred_at"), "occurred_at")
    for row in rows.annotate(
        triaged=Count("pk"), false_positives=Count("pk", filter=Q(label="false_positive"))
    ):
        item = counts[(_bucket_key(row["b"]), row["rule_id"])]
        item.triaged += row["triaged"]
        item.false_positives += row["false_positives"]
    return counts


def _add_histogram(into: list[int], row: dict, columns: tuple[str, ...], prefix: str = "") -> None:
    for i, column in enumerate(columns):
        into[i] += row[f"{prefix}{column}"] or 0


def _add_values(into: list[int], values: Sequence[int | None]) -> None:
    """_add_histogram for a row read as a tuple: the bucket counts in column order."""
    for i, value in enumerate(values):
        if value:
            into[i] += value


def _sources_in_scope(scope: SliScope, rule_ids: set[int] | None, window: Window) -> set[int]:
    """The sources whose engine-level figures (M6, M8, M9) a scope covers.

    A rule scope covers the sources that reported those rules in the window.
    """
    sources = Source.objects.exclude(kind=SourceKind.INTERNAL)
    if scope.source:
        sources = sources.filter(name=scope.source)
    if scope.environment:
        sources = sources.filter(
            Q(environment=scope.environment)
            | Q(pk__in=DecisionDaily.objects.filter(environment=scope.environment).values("source"))
        )
    ids = set(sources.values_list("pk", flat=True))
    if rule_ids is not None:
        # Hours of one day are no whole day: the daily table cannot say who reported in them.
        if window.unit == HOUR:
            reporting = DecisionHourly.objects.filter(
                bucket__gte=window.start, bucket__lt=window.end
            )
        else:
            reporting = DecisionDaily.objects.filter(
                day__gte=window.start.date(), day__lt=window.end.date()
            )
        reporting = reporting.filter(rule_id__in=rule_ids).values_list("source_id", flat=True)
        ids &= set(reporting.distinct())
    return ids


def source_counts(
    *, window: Window, scope: SliScope, rule_ids: set[int] | None, now: datetime | None = None
) -> dict[datetime, SourceCounts]:
    """Engine-level sums by bucket of the window's unit."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    sources = _sources_in_scope(scope, rule_ids, window)
    counts: dict[datetime, SourceCounts] = defaultdict(SourceCounts)
    in_window = {"bucket__gte": window.start, "bucket__lt": window.end, "source_id__in": sources}

    # Whole days read the daily tables, which hold the same sums by day.
    daily = window.unit == DAY
    in_days = {"day__gte": window.start.date(), "day__lt": window.end.date()}

    # M8: per (bucket, source, epoch), seen sequence numbers against the span they cover.
    if daily:
        rows = SequenceDaily.objects.filter(**in_days, source_id__in=sources).values_list(
            "day", "source_id", "epoch", "seq_min", "seq_max", "stored"
        )
    else:
        rows = (
            SequenceHourly.objects.filter(**in_window)
            .annotate(b=_UtcTrunc("bucket", window.unit))
            .values("b", "source_id", "epoch")
            .annotate(low=Min("seq_min"), high=Max("seq_max"), n_stored=_IntSum("stored"))
            .values_list("b", "source_id", "epoch", "low", "high", "n_stored")
        )
    for bucket, source_id, epoch, low, high, stored in rows:
        item = counts[_bucket_key(bucket)]
        item.seq_stored += stored
        item.seq_expected += high - low + 1
        item.seq_spans[(source_id, epoch)] = (low, high)

    # M8 drops at the source and M9 heartbeats: per source, from its first heartbeat on.
    if daily:
        first_heartbeat = dict(
            HeartbeatDaily.objects.filter(source_id__in=sources)
            .values("source_id")
            .annotate(first=Min("first_hour"))
            .values_list("source_id", "first")
        )
        heartbeats = HeartbeatDaily.objects.filter(**in_days, source_id__in=sources).values_list(
            "day", "source_id", "slots_seen", "dropped_min", "dropped_max"
        )
        heartbeats = [(_bucket_key(day), *row) for day, *row in heartbeats]
    else:
        first_heartbeat = dict(
            HeartbeatHourly.objects.filter(source_id__in=sources)
            .values("source_id")
            .annotate(first=Min("bucket"))
            .values_list("source_id", "first")
        )
        heartbeats = _heartbeats(in_window, window)
    for key, source_id, slots_seen, dropped_min, dropped_max in heartbeats:
        item = counts[key]
        item.slots_seen += slots_seen
        if dropped_max is not None:
            _span_merge(item.drop_spans, source_id, dropped_min, dropped_max)
    for item in counts.values():
        item.dropped = sum(high - low for low, high in item.drop_spans.values())
    intervals = dict(
        Source.objects.filter(pk__in=first_heartbeat).values_list(
            "pk", "heartbeat_interval_seconds"
        )
    )
    now_hour = now.replace(minute=0, second=0, microsecond=0)
    for source_id, first in first_heartbeat.items():
        slot = slot_seconds(intervals[source_id])
        per_hour = -(-3600 // slot)
        hour = max(first.astimezone(UTC), window.start)
        last = min(window.end, now_hour + timedelta(hours=1))
        while hour < last:
            # The whole hours from `hour` to the end of its bucket (a day, or the one hour).
            key = hour if window.unit == HOUR else _bucket_key(hour.date())
            end = min(last, key + window.step)
            hours = int((end - hour) / timedelta(hours=1))
            counts[key].slots_expected += per_hour * hours
            # The current hour expects only the slots that have begun.
            if hour <= now_hour < end:
                begun = int((now - now_hour).total_seconds() // slot) + 1
                counts[key].slots_expected += begun - per_hour
            hour = end

    # M6: the latest inventory of each (source, environment, service) in each bucket.
    rows = InventoryHourly.objects.filter(**in_window)
    if scope.environment:
        rows = rows.filter(environment=scope.environment)
    if scope.service:
        rows = rows.filter(service=scope.service)
    for row in rows.annotate(b=_UtcTrunc("bucket", window.unit)).values_list(
        "b", "source_id", "environment", "service", "observed_at", "resources_total",
        "resources_covered",
    ):  # fmt: skip
        bucket, source_id, environment, service, *snapshot = row
        key = (source_id, environment, service)
        _snapshot_merge(counts[_bucket_key(bucket)].snapshots, key, tuple(snapshot))
    for item in counts.values():
        item.resources_total = sum(s[1] for s in item.snapshots.values())
        item.resources_covered = sum(s[2] for s in item.snapshots.values())
    return counts


class _BitCount(Func):
    """The set bits of a bigint (PostgreSQL 14 and later)."""

    template = "bit_count(int8send(%(expressions)s))"
    output_field = BigIntegerField()


def _heartbeats(in_window: dict, window: Window) -> list[tuple]:
    """(bucket key, source, heartbeat slots seen, lowest and highest dropped_total) of each
    bucket and source, from a row per source and hour. PostgreSQL sums them itself (a 90-day
    window has a row for every hour of every source); elsewhere they are summed here."""
    rows = HeartbeatHourly.objects.filter(**in_window)
    reporting = Q(dropped_max__isnull=False)
    if connection.vendor == "postgresql":
        rows = (
            rows.annotate(b=_UtcTrunc("bucket", window.unit))
            .values("b", "source_id")
            .annotate(
                seen=Cast(Sum(_BitCount("slots_seen")), BigIntegerField()),
                low=Min("dropped_min", filter=reporting),
                high=Max("dropped_max", filter=reporting),
            )
            .values_list("b", "source_id", "seen", "low", "high")
        )
        return [(_bucket_key(bucket), *row) for bucket, *row in rows]
    sums: dict[tuple[datetime, int], list] = {}
    keys: dict[datetime, datetime] = {}
    for hour, source_id, slots_seen, dropped_min, dropped_max in rows.values_list(
        "bucket", "source_id", "slots_seen", "dropped_min", "dropped_max"
    ):
        key = keys.get(hour)
        if key is None:
            key = keys[hour] = _truncated(hour, window.unit)
        total = sums.setdefault((key, source_id), [0, None, None])
        total[0] += slots_seen.bit_count()
        if dropped_max is not None:
            total[1] = dropped_min if total[1] is None else min(total[1], dropped_min)
            total[2] = dropped_max if total[2] is None else max(total[2], dropped_max)
    return [(key, source_id, *total) for (key, source_id), total in sums.items()]


def heartbeat_days_summed(*, window: Window, source_id: int | None = None) -> list[tuple]:
    """(day, source, heartbeat slots seen, lowest and highest dropped_total, first hour with a
    heartbeat) of each day of a whole-day window and source (or of the one source), summed
    from HeartbeatHourly: what posture.rollups stores into HeartbeatDaily."""
    in_window: dict = {"bucket__gte": window.start, "bucket__lt": window.end}
    if source_id is not None:
        in_window["source_id"] = source_id
    firsts = (
        HeartbeatHourly.objects.filter(**in_window)
        .annotate(b=_UtcTrunc("bucket", DAY))
        .values("b", "source_id")
        .annotate(first=Min("bucket"))
        .values_list("b", "source_id", "first")
    )
    first_hours = {(_bucket_key(bucket), source_id): first for bucket, source_id, first in firsts}
    return [
        (key, source_id, seen, low, high, first_hours[(key, source_id)])
        for key, source_id, seen, low, high in _heartbeats(in_window, window)
    ]


def _span_merge(spans: dict, key: object, low: int, high: int) -> None:
    if key in spans:
        low, high = min(low, spans[key][0]), max(high, spans[key][1])
    spans[key] = (low, high)


def _snapshot_merge(snapshots: dict, key: tuple, snapshot: tuple[datetime, int, int]) -> None:
    """Keep the latest snapshot of a scope (hours apart, so observed_at never ties)."""
    if key not in snapshots or snapshot[0] >= snapshots[key][0]:
        snapshots[key] = snapshot


def _window_totals(counts: dict) -> RuleCounts:
    total = RuleCounts()
    for item in counts.values():
        total.add(item)
    return total


def _source_window_totals(by_bucket: dict[datetime, SourceCounts]) -> SourceCounts:
    """Window totals. Sequence spans and drop ranges are merged across the buckets, not added,
    so a gap or a drop between two buckets counts; coverage is the latest snapshot of each
    (source, environment, service) in the window, not a sum over time."""
    total = SourceCounts()
    for item in by_bucket.values():
        for name in ("seq_stored", "slots_seen", "slots_expected"):
            setattr(total, name, getattr(total, name) + getattr(item, name))
        for key, (low, high) in item.seq_spans.items():
            _span_merge(total.seq_spans, key, low, high)
        for key, (low, high) in item.drop_spans.items():
            _span_merge(total.drop_spans, key, low, high)
        for key, snapshot in item.snapshots.items():
            _snapshot_merge(total.snapshots, key, snapshot)
    total.seq_expected = sum(high - low + 1 for low, high in total.seq_spans.values())
    total.dropped = sum(high - low for low, high in total.drop_spans.values())
    total.resources_total = sum(s[1] for s in total.snapshots.values())
    total.resources_covered = sum(s[2] for s in total.snapshots.values())
    return total


# ---------------------------------------------------------------------------------------------
# Figures


def figures_from(counts: RuleCounts, engines: SourceCounts) -> list[sli.Figure]:
    """M1-M10 (M1 at p50, p95 and p99) from summed counts."""
    return [
        *(sli.decision_latency(counts=counts.latency, quantile=q) for q in QUANTILES),
        sli.enforcement_success(enforced=counts.enforce_ok, expected=counts.enforce_expected),
        sli.deny_rate(denies=counts.denies - counts.excepted_denies, decisions=counts.decisions),
        sli.false_positive_rate(false_positives=counts.false_positives, triaged=counts.triaged),
        sli.deployment_lead_time(counts=counts.lead_time, quantile=0.95),
        sli.policy_coverage(covered=engines.resources_covered, total=engines.resources_total),
        sli.remediation_success(
            succeeded=counts.remediations_succeeded,
            attempts=counts.remediations_succeeded + counts.remediations_failed,
        ),
        sli.audit_completeness(
            stored=engines.seq_stored,
            # A source that repeats a sequence number stores more than its span: no gap then.
            missing_in_transit=max(engines.seq_expected - engines.seq_stored, 0),
            dropped_at_source=engines.dropped,
        ),
        sli.engine_availability(
            intervals_seen=engines.slots_seen, intervals_expected=engines.slots_expected
        ),
        sli.time_to_detect(counts=counts.ttd, quantile=0.95),
    ]


def figure_values(counts: RuleCounts, engines: SourceCounts) -> list[float | None]:
    """The values of figures_from(counts, engines), in its order, without building each
    figure's formula: what a daily series needs (tests hold the two to the same values)."""

    def ratio(numerator: int, denominator: int) -> float | None:
        return numerator / denominator if denominator else None

    def quantile(counts: list[int], bounds: tuple, figure: Callable, q: float) -> float | None:
        return _quantile_reading(counts, bounds, figure, q).value

    missing = max(engines.seq_expected - engines.seq_stored, 0)
    return [
        *(
            quantile(counts.latency, sli.LATENCY_BOUNDS_MS, sli.decision_latency, q)
            for q in QUANTILES
        ),
        ratio(counts.enforce_ok, counts.enforce_expected),
        ratio(counts.denies - counts.excepted_denies, counts.decisions),
        ratio(counts.false_positives, counts.triaged),
        quantile(counts.lead_time, sli.LEAD_TIME_BOUNDS_MINUTES, sli.deployment_lead_time, 0.95),
        ratio(engines.resources_covered, engines.resources_total),
        ratio(
            counts.remediations_succeeded,
            counts.remediations_succeeded + counts.remediations_failed,
        ),
        ratio(engines.seq_stored, engines.seq_stored + missing + engines.dropped),
        ratio(min(engines.slots_seen, engines.slots_expected), engines.slots_expected),
        quantile(counts.ttd, sli.TTD_BOUNDS_SECONDS, sli.time_to_detect, 0.95),
    ]


# Which figure an SLO target applies to: M1 and M5/M10 at p95.
def _target_figure(figure: sli.Figure) -> bool:
    return figure.sli != "M1" or figure.name.endswith("p95")


@dataclass(frozen=True)
class Target:
    target: float
    direction: str
    scope: str
    scope_value: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def targets_for(scope: SliScope, targets: list[SloTarget] | None = None) -> dict[str, Target]:
    """The SLO target of each SLI for a scope: the most specific that applies."""
    if targets is None:
        targets = list(SloTarget.objects.all())
    wanted = [
        (Scope.RULE, str(scope.rule) if scope.rule is not None else None),
        (Scope.CONTROL, scope.control or None),
        (Scope.FRAMEWORK, scope.framework or None),
        (Scope.SERVICE, scope.service or None),
        (Scope.ENVIRONMENT, scope.environment or None),
        (Scope.SOURCE, scope.source or None),
        (Scope.ORG, ""),
    ]
    found: dict[str, Target] = {}
    by_key = {(t.sli, t.scope, t.scope_value): t for t in targets}
    for code in sli.SLI_DIRECTION:
        for kind, value in wanted:
            match = by_key.get((code, kind, value)) if value is not None else None
            if match is not None:
                found[code] = Target(match.target, match.direction, kind, value)
                break
    return found


def _judged(figures: list[sli.Figure], targets: dict[str, Target]) -> list[dict]:
    out = []
    for figure in figures:
        item = {**figure.as_dict(), "target": None, "meets_target": None}
        target = targets.get(figure.sli)
        if target is not None and _target_figure(figure):
            item["target"] = target.as_dict()
            item["meets_target"] = sli.meets_target(
                figure=figure, target=target.target, direction=target.direction
            )
        out.append(item)
    return out


@dataclass(frozen=True)
class SliReport:
    window: Window
    scope: SliScope
    figures: list[dict]
    mapping_version: str | None
    rollup_lag_seconds: float

    def as_dict(self) -> dict:
        return {
            "window": self.window.as_dict(),
            "scope": self.scope.as_dict(),
            "mapping_version": self.mapping_version,
            "rollup_lag_seconds": round(self.rollup_lag_seconds, 1),
            "figures": self.figures,
        }


def slis_report(*, window: Window, scope: SliScope, now: datetime | None = None) -> SliReport:
    """All SLIs for one window and scope, each beside its target, with the error budget of
    the window and the burn rates of this clock hour ("1h") and of the last 6 clock hours,
    this one included ("6h"): hourly rollups make clock hours the unit (docs/slis.md)."""
    mapping_version = mapping_version_current()
    rule_ids = scope_rule_ids(scope, mapping_version)

    def figures_of(span: Window) -> list[sli.Figure]:
        counts = _window_totals(rule_counts(window=span, scope=scope, rule_ids=rule_ids))
        engines = _source_window_totals(
            source_counts(window=span, scope=scope, rule_ids=rule_ids, now=now)
        )
        return figures_from(counts, engines), counts

    (figures, counts), targets = figures_of(window), targets_for(scope)
    (hour, hour_counts), (six, six_counts) = (
        figures_of(window_last(hours=hours, now=now)) for hours in (1, 6)
    )
    judged = _judged(figures, targets)
    for i, item in enumerate(judged):
        target = targets.get(figures[i].sli)
        if target is None or not _target_figure(figures[i]):
            continue
        good_total = _good_and_total(figures[i], target, counts)
        if good_total is None:
            continue
        item["error_budget"] = sli.error_budget(
            good=good_total[0], total=good_total[1], target=good_total[2]
        ).as_dict()
        burns = {}
        for name, (recent, recent_counts) in (
            ("1h", (hour, hour_counts)),
            ("6h", (six, six_counts)),
        ):
            good, total, budget_target = _good_and_total(recent[i], target, recent_counts)
            burns[name] = sli.burn_rate(bad=total - good, total=total, target=budget_target)
        item["burn_rate"] = {
            **burns,
            "alert": sli.burn_alert(burn_1h=burns["1h"], burn_6h=burns["6h"]),
        }
    return SliReport(
        window=window,
        scope=scope,
        figures=judged,
        mapping_version=mapping_version.version if mapping_version else None,
        rollup_lag_seconds=rollup_lag().seconds_behind,
    )


_HISTOGRAMS = {
    "M1": ("latency", sli.LATENCY_BOUNDS_MS),
    "M5": ("lead_time", sli.LEAD_TIME_BOUNDS_MINUTES),
    "M10": ("ttd", sli.TTD_BOUNDS_SECONDS),
}


def _good_and_total(
    figure: sli.Figure, target: Target, counts: RuleCounts
) -> tuple[int, int, float] | None:
    """(good events, all events, the share that must be good) behind an SLO, for its budget.

    A ratio "at least T" counts its numerator as good; a rate "at most T" counts what is not
    in its numerator, at 1 - T. A p95 "at most X" counts the observations at or under X (whole
    buckets up to X), at 95 %."""
    if figure.sli in _HISTOGRAMS:
        name, bounds = _HISTOGRAMS[figure.sli]
        histogram = getattr(counts, name)
        good = sum(n for n, bound in zip(histogram, bounds, strict=False) if bound <= target.target)
        return good, sum(histogram), 0.95
    if figure.numerator is None or figure.denominator is None:
        return 0, 0, target.target if target.direction == "at_least" else 1 - target.target
    numerator, denominator = int(figure.numerator), int(figure.denominator)
    if target.direction == "at_least":
        return numerator, denominator, target.target
    return denominator - numerator, denominator, 1 - target.target


# ---------------------------------------------------------------------------------------------
# Frameworks


def _rule_verdict(
    counts: RuleCounts, targets: dict[str, Target], plan: list | None = None
) -> bool | None:
    """Whether one rule meets the targets of its rule-level SLIs (M1, M2, M3, M4, M7, M10),
    the quantiles (M1, M10) at p95.

    A rule that denies much is doing its job: the deny rate is judged only against a target
    set for that rule itself, not the organisation's (which drives the on-call burn rate).

    This runs for every rule and bucket of every framework's series, so each SLI is read as
    posture.sli computes it (_VERDICT_READINGS) without building the figure and its formula
    text, and only those with a target: `plan`, _verdict_plan(targets) worked out once.
    """
    plan = _verdict_plan(targets) if plan is None else plan
    results = []
    for read, target in plan:
        reading = read(counts)
        # No data neither meets nor misses a target: meets_target says None (the plan has
        # already had it check the direction, which it does first).
        results.append(
            None
            if reading.value is None
            # meets_target reads only a figure's value and overflow, which a reading has.
            else sli.meets_target(figure=reading, target=target.target, direction=target.direction)
        )
    return sli.rule_meets_targets(slo_results=results)


def _verdict_plan(targets: dict[str, Target]) -> list[tuple[Callable, Target]]:
    """(reading, target) of each SLI a rule verdict judges against `targets`."""
    plan = [
        (_VERDICT_READINGS[code], target)
        for code, target in targets.items()
        if code in _VERDICT_READINGS and (code != "M3" or target.scope == Scope.RULE)
    ]
    for _, target in plan:  # refuses a direction it does not know, as it would with data
        sli.meets_target(figure=_Reading(None), target=target.target, direction=target.direction)
    return plan


_VERDICT_QUANTILE = 0.95
# The quantiles read, as posture.sli reads them (0.95 is 19/20 exactly); any other is refused.
_EXACT_QUANTILES = {q: sli._decimal(q) for q in QUANTILES}


class _Reading(NamedTuple):
    """A figure's value, and whether it is an overflow quantile (a lower bound only)."""

    value: float | None
    overflow: bool = False


def _quantile_reading(
    counts: Sequence[int],
    bounds: Sequence[float],
    figure: Callable[..., sli.Figure],
    quantile: float = _VERDICT_QUANTILE,
) -> _Reading:
    """The value of figure(counts=counts, quantile=quantile): the upper bound of the bucket
    that holds the observation of rank ceil(quantile * n), exactly as posture.sli finds it.
    Counts it would refuse go to `figure` itself, which raises."""
    if len(counts) != len(bounds) + 1 or min(counts) < 0:
        refused = figure(counts=counts, quantile=quantile)
        return _Reading(refused.value, refused.overflow)
    observations = sum(counts)
    if observations == 0:
        return _Reading(None)
    exact = _EXACT_QUANTILES[quantile]
    rank = -(-exact.numerator * observations // exact.denominator)
    # The first bucket by which `rank` observations have been seen.
    bucket = bisect.bisect_left(list(itertools.accumulate(counts)), rank)
    return _Reading(float(bounds[min(bucket, len(bounds) - 1)]), bucket == len(bounds))


def _ratio_reading(figure: Callable[..., sli.Figure], **counts: int) -> _Reading:
    """The value of figure(**counts), a ratio figure given its numerator then its
    denominator: numerator / denominator as posture.sli divides, no data when the denominator
    is 0. Counts it would refuse go to `figure` itself, which raises."""
    numerator, denominator = counts.values()
    if 0 <= numerator <= denominator:
        return _Reading(numerator / denominator if denominator else None)
    refused = figure(**counts)
    return _Reading(refused.value, refused.overflow)


# How a rule verdict reads each rule-level SLI from a rule's counts.
_VERDICT_READINGS: dict[str, Callable[[RuleCounts], _Reading]] = {
    "M1": lambda c: _quantile_reading(c.latency, sli.LATENCY_BOUNDS_MS, sli.decision_latency),
    "M2": lambda c: _ratio_reading(
        sli.enforcement_success, enforced=c.enforce_ok, expected=c.enforce_expected
    ),
    "M3": lambda c: _ratio_reading(
        sli.deny_rate, denies=c.denies - c.excepted_denies, decisions=c.decisions
    ),
    "M4": lambda c: _ratio_reading(
        sli.false_positive_rate, false_positives=c.false_positives, triaged=c.triaged
    ),
    "M7": lambda c: _ratio_reading(
        sli.remediation_success,
        succeeded=c.remediations_succeeded,
        attempts=c.remediations_succeeded + c.remediations_failed,
    ),
    "M10": lambda c: _quantile_reading(c.ttd, sli.TTD_BOUNDS_SECONDS, sli.time_to_detect),
}


class _ControlRow(NamedTuple):
    """What a framework's status shows of a control (model instances cost more to build)."""

    pk: int
    parent_id: int | None
    code: str
    title: str


@dataclass
class _FrameworkMap:
    framework: Framework
    controls: list[_ControlRow]
    rules_by_control: dict[int, set[int]]  # control pk -> rules mapped to it or below it
    codes: dict[int, str]  # control pk -> code

    @functools.cached_property
    def rules(self) -> set[int]:
        return set().union(*self.rules_by_control.values())

    @functools.cached_property
    def leaves(self) -> list[tuple[str, list[int]]]:
        """(code, sorted rules) of each mapped control that has no mapped control under it,
        in control order: the controls a score weighs, once each."""
        mapped = {pk for pk, rules in self.rules_by_control.items() if rules}
        parents = {c.parent_id for c in self.controls if c.pk in mapped}
        return [
            (c.code, sorted(self.rules_by_control[c.pk]))
            for c in self.controls
            if c.pk in mapped and c.pk not in parents
        ]


# Verdicts of (targets, counts) reached in this process. A verdict depends on nothing else,
# and the days of a window before today keep their counts, so a dashboard shown again judges
# little more than today afresh. Cleared when full, which bounds the memory it takes.
# About 1 KB each (a key holds a day's counts of one rule): some 20 MB at most; a year of
# daily series of 50 rules is 18,000.
_VERDICTS: dict[tuple, bool | None] = {}
_VERDICTS_KEPT = 20_000
_UNJUDGED = object()
# A small number for each set of targets met, so a verdict's key hashes quickly. Numbers come
# from a counter, so two threads meeting two new sets at once cannot get the same one.
_TARGET_SETS: dict[tuple, int] = {}
_TARGET_SET_NUMBERS = itertools.count()


@dataclass
class _Judge:
    """Rule verdicts for one summary, shared by all its frameworks: a rule mapped into several
    frameworks is judged on the same counts against the same targets in each.

    `by_bucket` holds each bucket's counts by rule and `rule_totals` each rule's window
    totals, as RuleCounts.flat() values."""

    targets_all: list[SloTarget]
    by_bucket: dict[datetime, dict[int, tuple[int, ...]]]
    rule_totals: dict[int, tuple[int, ...]]
    _plans: dict[int, tuple] = field(default_factory=dict)
    _window: dict[int, bool | None] = field(default_factory=dict)
    _buckets: dict[datetime, dict[int, bool | None]] = field(default_factory=dict)

    def window_verdict(self, rule: int) -> bool | None:
        if rule not in self._window:
            self._window[rule] = self._judged(rule, self.rule_totals.get(rule, _NO_COUNTS))
        return self._window[rule]

    def bucket_verdicts(self, bucket: datetime) -> dict[int, bool | None]:
        """The verdict of each rule with counts in the bucket (a rule without has none)."""
        verdicts = self._buckets.get(bucket)
        if verdicts is None:
            verdicts = self._buckets[bucket] = {
                rule: self._judged(rule, values)
                for rule, values in self.by_bucket.get(bucket, {}).items()
            }
        return verdicts

    def _judged(self, rule: int, values: tuple[int, ...]) -> bool | None:
        plan = self._plans.get(rule)
        if plan is None:
            targets = targets_for(SliScope(rule=rule), self.targets_all)
            key = tuple(targets.items())
            target_set = _TARGET_SETS.get(key)
            if target_set is None:
                target_set = _TARGET_SETS.setdefault(key, next(_TARGET_SET_NUMBERS))
            plan = self._plans[rule] = (target_set, targets, _verdict_plan(targets))
        key = (plan[0], values)
        verdict = _VERDICTS.get(key, _UNJUDGED)
        if verdict is _UNJUDGED:
            if len(_VERDICTS) >= _VERDICTS_KEPT:
                _VERDICTS.clear()
                _TARGET_SETS.clear()  # numbers are never reused: the counter goes on
            verdict = _rule_verdict(RuleCounts.from_flat(values), plan[1], plan[2])
            _VERDICTS[key] = verdict
        return verdict


def _flat_sums(rows: Iterable[tuple[object, Sequence[int]]]) -> dict[object, tuple[int, ...]]:
    """Sums of flat() values by key, from (key, values) pairs: column by column in C."""
    groups: dict[object, list[Sequence[int]]] = defaultdict(list)
    for key, values in rows:
        groups[key].append(values)
    return {key: tuple(map(sum, zip(*group, strict=True))) for key, group in groups.items()}


def _rule_rows(window: Window, rule_ids: set[int] | None) -> list[tuple]:
    """rule_counts() over all sources as (bucket, rule id, RuleCounts.flat() values)."""
    if window.unit == DAY:
        return rule_daily_rows(window=window, rule_ids=rule_ids)
    counts = rule_counts_summed(window=window, scope=SliScope(), rule_ids=rule_ids)
    return [(bucket, rule_id, item.flat()) for (bucket, rule_id), item in counts.items()]


def _judge(rows: Iterable[tuple], targets_all: list[SloTarget]) -> _Judge:
    """A judge of rules' counts: (bucket, rule id, flat() values) rows of one window."""
    by_bucket: dict[datetime, dict[int, tuple[int, ...]]] = defaultdict(dict)
    for bucket, rule_id, values in rows:
        by_bucket[bucket][rule_id] = values
    rule_totals = _flat_sums(
        (rule_id, values) for rules in by_bucket.values() for rule_id, values in rules.items()
    )
    return _Judge(targets_all, by_bucket, rule_totals)


def _framework_map(framework: Framework, mapping_version: MappingVersion | None) -> _FrameworkMap:
    controls = [
        _ControlRow(*row)
        for row in framework.controls.order_by("position").values_list(
            "pk", "parent_id", "code", "title"
        )
    ]
    direct: dict[int, set[int]] = defaultdict(set)
    for control_id, rule_id in RuleControl.objects.filter(
        mapping_version=mapping_version, control__framework=framework
    ).values_list("control_id", "rule_id"):
        direct[control_id].add(rule_id)
    children: dict[int | None, list[int]] = defaultdict(list)
    for control in controls:
        children[control.parent_id].append(control.pk)

    below: dict[int, set[int]] = {}

    def collect(pk: int) -> set[int]:
        rules = set(direct.get(pk, ()))
        for child in children.get(pk, ()):
            rules |= collect(child)
        below[pk] = rules
        return rules

    for root in children.get(None, []):
        collect(root)
    return _FrameworkMap(framework, controls, below, {c.pk: c.code for c in controls})


def framework_status(*, slug: str, window: Window) -> dict:
    """Per control: the share of mapped rules meeting their targets, violations open; and the
    framework's compliance score over the window and as a series (docs/slis.md)."""
    framework = Framework.objects.filter(slug=slug).first()
    if framework is None:
        raise ScopeUnknown(f"no framework {slug!r}")
    mapping_version = mapping_version_current()
    fmap = _framework_map(framework, mapping_version)
    judge = _judge(_rule_rows(window, fmap.rules), list(SloTarget.objects.all()))
    return _framework_status(fmap, window, judge, mapping_version)


def frameworks_status(*, window: Window) -> list[dict]:
    """framework_status of every framework, by name: one read of the rollups and each rule
    judged once, however many frameworks map it."""
    mapping_version = mapping_version_current()
    judge = _judge(_rule_rows(window, None), list(SloTarget.objects.all()))
    return [
        _framework_status(_framework_map(fw, mapping_version), window, judge, mapping_version)
        for fw in Framework.objects.order_by("name")
    ]


def _framework_status(
    fmap: _FrameworkMap, window: Window, judge: _Judge, mapping_version: MappingVersion | None
) -> dict:
    summary = _framework_summary(fmap, window, judge)
    verdicts = summary.pop("verdicts")
    open_now = _violations_open(fmap.rules, at=window.end)
    controls = []
    for control in fmap.controls:
        rules = fmap.rules_by_control.get(control.pk)
        if not rules:
            continue
        status = sli.control_status(
            rule_results=[verdicts[rule] for rule in sorted(rules)], control=control.code
        )
        controls.append(
            {
                "code": control.code,
                "title": control.title,
                "parent": fmap.codes.get(control.parent_id),
                "rules": sorted(rules),
                "status": status.as_dict(),
                "violations_open": sum(open_now.get(rule, 0) for rule in rules),
            }
        )
    return {
        **summary,
        "mapping_version": mapping_version.version if mapping_version else None,
        "controls": controls,
        "rollup_lag_seconds": round(rollup_lag().seconds_behind, 1),
    }


def _framework_summary(fmap: _FrameworkMap, window: Window, judge: _Judge) -> dict:
    verdicts = {rule: judge.window_verdict(rule) for rule in fmap.rules}
    framework = fmap.framework
    return {
        "framework": {"slug": framework.slug, "name": framework.name, "version": framework.version},
        "window": window.as_dict(),
        "score": sli.compliance_score(controls=_leaf_statuses(fmap, verdicts)).as_dict(),
        "series": _score_series(fmap, window, judge),
        "verdicts": verdicts,
    }


def executive_summary(*, days: int = 90, now: datetime | None = None) -> dict:
    """Everything the executive dashboard shows: all SLIs over the window beside the window
    before, daily series, and each framework's score and series. Reads rollups only."""
    window = window_last(days=days, now=now)
    previous = Window(start=window.start - (window.end - window.start), end=window.start, unit=DAY)
    scope = SliScope()
    targets_all = list(SloTarget.objects.all())
    org_targets = targets_for(scope, targets_all)
    mapping_version = mapping_version_current()

    # Both windows in one read, day by day: each day's counts stand alone, so a window's
    # totals are the sums of its days' (integer counts: the same sums as a read of each).
    both = Window(start=previous.start, end=window.end, unit=DAY)
    rows = rule_daily_rows(window=both, rule_ids=None)
    day_sums = _flat_sums((day, values) for day, _, values in rows)
    daily_rules = {
        day: RuleCounts.from_flat(values) for day, values in day_sums.items() if day >= window.start
    }
    period_sums = _flat_sums(
        ("window" if day >= window.start else "before", values) for day, values in day_sums.items()
    )
    totals = {period: RuleCounts.from_flat(values) for period, values in period_sums.items()}

    engine_days = source_counts(window=both, scope=scope, rule_ids=None, now=now)
    engines_by_bucket = {day: counts for day, counts in engine_days.items() if day >= window.start}
    figures = figures_from(
        totals.get("window", RuleCounts()), _source_window_totals(engines_by_bucket)
    )
    before = figures_from(
        totals.get("before", RuleCounts()),
        _source_window_totals({day: c for day, c in engine_days.items() if day < window.start}),
    )
    series = [
        figure_values(
            daily_rules.get(bucket, RuleCounts()), engines_by_bucket.get(bucket, SourceCounts())
        )
        for bucket in window.buckets()
    ]
    trends = []
    for i, (figure, earlier) in enumerate(zip(_judged(figures, org_targets), before, strict=True)):
        trends.append(
            {
                **figure,
                "previous": earlier.as_dict(),
                "series": [
                    {"bucket": label, "value": day[i]}
                    for label, day in zip(window.labels(), series, strict=True)
                ],
            }
        )
    judge = _judge((row for row in rows if row[0] >= window.start), targets_all)
    frameworks = []
    for framework in Framework.objects.order_by("name"):
        summary = _framework_summary(_framework_map(framework, mapping_version), window, judge)
        summary.pop("verdicts")
        frameworks.append(summary)
    return {
        "window": window.as_dict(),
        "mapping_version": mapping_version.version if mapping_version else None,
        "figures": trends,
        "frameworks": frameworks,
        "rollup_lag_seconds": round(rollup_lag().seconds_behind, 1),
    }


def _leaf_statuses(fmap: _FrameworkMap, verdicts: dict[int, bool | None]) -> list:
    """The score weighs each mapped control that has no mapped control under it once."""
    return [
        sli.control_status(rule_results=[verdicts.get(rule) for rule in rules], control=code)
        for code, rules in fmap.leaves
    ]


def _score_series(fmap: _FrameworkMap, window: Window, judge: _Judge) -> list[dict]:
    """The compliance score of each bucket of the window, judged on that bucket alone.

    Each (bucket, rule) is judged once however many frameworks map the rule (`judge`), and a
    control's status once per combination of its rules' verdicts."""
    statuses: dict[tuple, sli.ControlStatus] = {}
    series = []
    for bucket, label in zip(window.buckets(), window.labels(), strict=True):
        verdicts = judge.bucket_verdicts(bucket)
        if not verdicts:
            # No rule with counts: no control has data, so there is no score.
            series.append({"bucket": label, "value": None})
            continue
        controls = []
        for code, rules in fmap.leaves:
            results = (code, *map(verdicts.get, rules))
            status = statuses.get(results)
            if status is None:
                status = statuses[results] = sli.control_status(
                    rule_results=results[1:], control=code
                )
            controls.append(status)
        series.append({"bucket": label, "value": score_value(controls)})
    return series


def score_value(controls: list[sli.ControlStatus]) -> float | None:
    """sli.compliance_score(controls=controls).value, without its formula text (a series
    point needs only the value; tests hold the two equal). The mean of the controls' shares
    passing/with_data, exactly: over a common denominator, then one correctly rounded division
    (the float of the same exact fraction as sli's)."""
    counted = [(c.passing, c.with_data) for c in controls if c.share is not None]
    if not counted:
        return None
    common = math.lcm(*(with_data for _, with_data in counted))
    shares = sum(passing * (common // with_data) for passing, with_data in counted)
    return shares / (common * len(counted))


def _violations_open(rule_ids: set[int], *, at: datetime) -> dict[int, int]:
    rows = (
        ViolationEpisode.objects.filter(rule_id__in=rule_ids, opened_at__lt=at)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=at))
        .values("rule_id")
        .annotate(n=Count("pk"))
    )
    return {row["rule_id"]: row["n"] for row in rows}


def high_severity_denies(*, window: Window) -> int:
    """Denies by rules the catalogue rates critical or high, in the window."""
    rows = DecisionDaily.objects.filter(
        day__gte=window.start.date(),
        day__lt=window.end.date(),
        outcome="deny",
        rule__severity__in=("critical", "high"),
    )
    return rows.aggregate(n=Sum(F("decisions") - F("excepted")))["n"] or 0
