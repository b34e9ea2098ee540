"""Keeping the rollups (posture.models.rollups) in step with the ledger.

Each source has a cursor: the last seq of its chain already counted. `rollups_apply` counts
the events after it and moves it, in one transaction, so every event is counted exactly once
however often the task runs or is retried. Decisions, the bulk of the ledger, are grouped by
the database (SELECT ... GROUP BY) and the groups folded here; the other kinds are few and
counted here in Python. Each table's rows are then upserted in one statement (on PostgreSQL
from column arrays). `rollups_rebuild` recounts from the ledger into empty tables with the
same code, so both paths give the same numbers.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import BinaryField, Case, F, Max, Min, Sum, When
from django.db.models.functions import TruncDate

from audit.canonical import canonical_loads
from audit.models import ChainHead, Event, EventKind, Source
from audit.storage import db_time, execute_prepared, raw_cursor
from posture.models import (
    DecisionDaily,
    DecisionHourly,
    DeploymentHourly,
    HeartbeatDaily,
    HeartbeatHourly,
    InventoryHourly,
    PolicyException,
    RemediationHourly,
    RollupCursor,
    Rule,
    RuleDaily,
    SequenceDaily,
    SequenceHourly,
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
from posture.sli import (
    LATENCY_BOUNDS_MS,
    LEAD_TIME_BOUNDS_MINUTES,
    TTD_BOUNDS_SECONDS,
    histogram_bucket,
)

logger = logging.getLogger(__name__)

# Events counted in one transaction; a longer backlog takes several.
CHUNK = 20_000
MIN_SLOT_SECONDS = 60


def rollups_apply(*, source_id: int, chunk: int = CHUNK) -> int:
    """Count the source's events past its cursor, a chunk at a time; how many were counted."""
    counted = 0
    while True:
        step = _apply_chunk(source_id, chunk)
        counted += step
        if step < chunk:
            return counted


def rollups_apply_all() -> int:
    """Catch every source up (the periodic job: covers enqueues lost while a broker was down)."""
    return sum(rollups_apply(source_id=pk) for pk in Source.objects.values_list("pk", flat=True))


def _apply_chunk(source_id: int, chunk: int) -> int:
    with transaction.atomic():
        _commit_without_waiting()
        RollupCursor.objects.get_or_create(source_id=source_id)
        cursor = RollupCursor.objects.select_for_update().get(source_id=source_id)
        head = ChainHead.objects.filter(source_id=source_id).values_list("seq", flat=True).first()
        if head is None or head <= cursor.seq:
            return 0
        after, upto = cursor.seq, min(head, cursor.seq + chunk)
        _daily_add(_count_range(source_id, after, upto))
        cursor.seq = upto
        cursor.save(update_fields=["seq", "updated_at"])
    return upto - after


@dataclass
class Counted:
    """What counting a range changes in the daily tables: the sums to add to RuleDaily by
    (day, rule), the (day, rule) pairs whose triage counts are recounted, and the (day, source)
    pairs whose HeartbeatDaily row is recounted."""

    rule_days: dict[tuple[date, int], dict[str, int]] = field(default_factory=dict)
    triage_days: set[tuple[date, int]] = field(default_factory=set)
    heartbeat_days: set[tuple[date, int]] = field(default_factory=set)


def _count_range(source_id: int, after: int, upto: int, since: datetime | None = None) -> Counted:
    """Add the events (after, upto] of one chain to the hourly rollups, DecisionDaily and
    SequenceDaily (those from `since` on, if set); what that changes in the other daily tables."""
    span = (source_id, after, upto)
    counted = Counted()
    groups = _range_groups(span, since)
    _decisions_add(span, since, [group for group in groups if group.decision], counted)
    _sequences_add([group for group in groups if group.sequenced])
    # A range of decisions alone (most of an admission controller's) has nothing more to read.
    # A rebuild from `since` reads on: the episodes follow violations from before it too.
    if since is not None or not all(group.decision for group in groups):
        _others_add(span, since, counted)
    return counted


def _daily_add(counted: Counted) -> None:
    """Keep the daily tables up with one range's counts, in the transaction that counts it.

    RuleDaily's sums are added to (additions commute, so sources counting at once need no
    lock of their own: the upserts' row locks, taken in key order, suffice), but for its
    triage counts, which a relabel moves down as well as up: those are
    recounted from the triage states, which only the internal source's counting writes. A
    source's HeartbeatDaily rows are recounted from its hours of those days (a day's slots
    seen are not a sum of additions, and no other source writes those rows).
    """
    _upsert_sums(RuleDaily, counted.rule_days)
    _triage_days_recount(counted.triage_days)
    days_by_source: dict[int, set[date]] = {}
    for day, source_id in counted.heartbeat_days:
        days_by_source.setdefault(source_id, set()).add(day)
    for source_id, days in sorted(days_by_source.items()):
        _heartbeat_days_recount(days, source_id=source_id)


def daily_recount(rule_days: set[date], heartbeat_days: set[date]) -> None:
    """Recount RuleDaily and HeartbeatDaily for these days from the hourly rollups: what a
    rebuild ends with (holding every cursor), and what a database from before the daily
    tables gets."""
    # Imported here: the selectors read rollup state from this module.
    from posture.selectors import SliScope, rule_counts_summed

    for first, last in _runs(sorted(rule_days)):
        window = _days_window(first, last)
        counts = rule_counts_summed(window=window, scope=SliScope(), rule_ids=None)
        RuleDaily.objects.filter(day__gte=first, day__lte=last).delete()
        _insert_rows(
            RuleDaily,
            ["day", "rule_id", *RULE_DAILY_COLUMNS],
            [(bucket.date(), rule_id, *item.flat()) for (bucket, rule_id), item in counts.items()],
        )
    _heartbeat_days_recount(heartbeat_days)


def _triage_days_recount(pairs: set[tuple[date, int]]) -> None:
    """Set RuleDaily's triage counts of these (day, rule) pairs to what the triage states
    give now (a relabel moves them down as well as up), counted as rule_counts_summed() does.
    Triage labels are few: their days are read whole, for their rules only."""
    from posture.selectors import RuleCounts, SliScope, rule_counts_summed

    if not pairs:
        return
    rules = {rule for _, rule in pairs}
    found = {}
    for first, last in _runs(sorted({day for day, _ in pairs})):
        window = _days_window(first, last)
        found.update(rule_counts_summed(window=window, scope=SliScope(), rule_ids=rules))
    values = []
    for day, rule in sorted(pairs):
        counts = found.get((_midnight(day), rule)) or RuleCounts()
        values.append((day, rule, counts.triaged, counts.false_positives))
    _executemany(
        RuleDaily,
        ["day", "rule_id", "triaged", "false_positives"],
        values,
        "DO UPDATE SET triaged = excluded.triaged, false_positives = excluded.false_positives",
    )


def _heartbeat_days_recount(days: set[date], source_id: int | None = None) -> None:
    """Recount HeartbeatDaily for these days (of one source, or of all)."""
    from posture.selectors import heartbeat_days_summed

    for first, last in _runs(sorted(days)):
        rows = heartbeat_days_summed(window=_days_window(first, last), source_id=source_id)
        stale = HeartbeatDaily.objects.filter(day__gte=first, day__lte=last)
        if source_id is not None:
            stale = stale.filter(source_id=source_id)
        stale.delete()
        _insert_rows(
            HeartbeatDaily,
            ["day", "source_id", "slots_seen", "dropped_min", "dropped_max", "first_hour"],
            [(bucket.date(), *row) for bucket, *row in rows],
        )


def _days_window(first: date, last: date):
    from posture.selectors import DAY, Window

    return Window(start=_midnight(first), end=_midnight(last + timedelta(days=1)), unit=DAY)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def days_with_counts() -> tuple[set[date], set[date]]:
    """Every day from the first to the last that the rollups RuleDaily and HeartbeatDaily
    are recounted from count into (what a database from before the daily tables needs)."""
    return (
        _days_between(_rule_day_bounds()),
        _days_between([HeartbeatHourly.objects.aggregate(first=Min("bucket"), last=Max("bucket"))]),
    )


def sequence_days_fill() -> None:
    """SequenceDaily from SequenceHourly (what a database from before the daily table needs;
    afterwards both are counted together)."""
    rows = (
        SequenceHourly.objects.annotate(day=TruncDate("bucket", tzinfo=UTC))
        .values("day", "source_id", "epoch")
        .annotate(low=Min("seq_min"), high=Max("seq_max"), stored=Sum("stored"))
        .values_list("day", "source_id", "epoch", "low", "high", "stored")
    )
    _insert_rows(
        SequenceDaily,
        ["day", "source_id", "epoch", "seq_min", "seq_max", "stored"],
        [(*row[:5], int(row[5])) for row in rows],
    )


def _days_between(bounds: list[dict]) -> set[date]:
    days = [
        moment.astimezone(UTC).date() if isinstance(moment, datetime) else moment
        for found in bounds
        for moment in found.values()
        if moment is not None
    ]
    if not days:
        return set()
    return {min(days) + timedelta(days=n) for n in range((max(days) - min(days)).days + 1)}


def _rule_day_bounds() -> list[dict]:
    """The first and last bucket of each rollup RuleDaily is recounted from."""
    return [
        DecisionDaily.objects.aggregate(first=Min("day"), last=Max("day")),
        *(
            model.objects.aggregate(first=Min(field), last=Max(field))
            for model, field in (
                (ViolationHourly, "bucket"),
                (RemediationHourly, "bucket"),
                (DeploymentHourly, "bucket"),
                (TriageState, "occurred_at"),
            )
        ),
    ]


RECOUNT_DAYS = 31  # days recounted in one read, which bounds the counts held in memory


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days, at most RECOUNT_DAYS long: (first, last)."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if (
            runs
            and day == runs[-1][1] + timedelta(days=1)
            and (day - runs[-1][0]).days < RECOUNT_DAYS
        ):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _commit_without_waiting() -> None:
    """Rollups are derived and their cursor commits with them: a crash that loses this
    transaction loses the cursor move too, and the events are counted again. So this commit
    need not wait for the disk, and leaves the WAL flushes to ingest (PostgreSQL only)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


@dataclass(frozen=True)
class RollupLag:
    events_behind: int
    seconds_behind: float


def rollup_lag() -> RollupLag:
    """How far the rollups trail the ledger: uncounted events, and the age of the oldest."""
    cursors = dict(RollupCursor.objects.values_list("source_id", "seq"))
    behind, oldest = 0, None
    for source_id, head in ChainHead.objects.values_list("source_id", "seq"):
        counted = cursors.get(source_id, 0)
        if head <= counted:
            continue
        behind += head - counted
        first = (
            Event.objects.filter(source_id=source_id, seq=counted + 1)
            .values_list("received_at", flat=True)
            .first()
        )
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    seconds = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
    return RollupLag(events_behind=behind, seconds_behind=max(seconds, 0.0))


def rollups_rebuild(*, since: datetime | None = None) -> int:
    """Recount the rollups from the ledger (from `since` on, by event time); events counted.

    Holds every cursor for the whole rebuild, so no incremental run interleaves, and counts
    each chain up to its cursor: afterwards the tables hold exactly what the incremental path
    would have. Episodes and triage states follow whole histories, so they are always rebuilt
    whole; they are small. `since` is taken back to the start of its UTC day, the unit of the
    daily table.
    """
    if since is not None:
        since = datetime.combine(since.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    with transaction.atomic():
        for source_id in Source.objects.values_list("pk", flat=True):
            RollupCursor.objects.get_or_create(source_id=source_id)
        cursors = dict(
            RollupCursor.objects.select_for_update().order_by("pk").values_list("source_id", "seq")
        )
        _rollups_delete(since)
        counted = 0
        rule_days: set[date] = set()
        heartbeat_days: set[date] = set()
        for source_id, seq in sorted(cursors.items()):
            for after in range(0, seq, CHUNK):
                upto = min(seq, after + CHUNK)
                changes = _count_range(source_id, after, upto, since)
                rule_days |= {day for day, _ in [*changes.rule_days, *changes.triage_days]}
                heartbeat_days |= {day for day, _ in changes.heartbeat_days}
                counted += upto - after
        daily_recount(rule_days, heartbeat_days)
    return counted


def _rollups_delete(since: datetime | None) -> None:
    ViolationEpisode.objects.all().delete()
    TriageState.objects.all().delete()
    for model in (
        DecisionHourly,
        ViolationHourly,
        RemediationHourly,
        DeploymentHourly,
        InventoryHourly,
        HeartbeatHourly,
        SequenceHourly,
    ):
        rows = model.objects.all()
        if since is not None:
            rows = rows.filter(bucket__gte=since)
        rows.delete()
    for model in (DecisionDaily, RuleDaily, SequenceDaily, HeartbeatDaily):
        days = model.objects.all()
        if since is not None:
            days = days.filter(day__gte=since.date())
        days.delete()


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------------------------------------
# Grouped by the database, in one read of a range: decisions and sequence numbers (a rule seen
# for the first time is registered as its groups are read: _rules_ensure).
#
# Both backends take the same statements but for a few expressions. SQLite keeps times as
# "YYYY-MM-DD HH:MM:SS[.ffffff]" text in UTC (Django's format), PostgreSQL as timestamptz
# (Django's connections use UTC).

_DIALECT = {
    "postgresql": {
        "hour": "date_trunc('hour', e.occurred_at)",
        "least": "LEAST",
        "greatest": "GREATEST",
    },
    "sqlite": {
        "hour": "strftime('%%Y-%%m-%%d %%H:00:00', e.occurred_at)",
        "least": "MIN",
        "greatest": "MAX",
    },
}


def _sql(name: str) -> str:
    return _DIALECT[connection.vendor][name]


def _span_filter(since: datetime | None) -> tuple[str, list]:
    """The WHERE clause (on alias e) of one chain's range, with its parameters' tail."""
    if since is None:
        return "e.source_id = %s AND e.seq > %s AND e.seq <= %s", []
    return "e.source_id = %s AND e.seq > %s AND e.seq <= %s AND e.occurred_at >= %s", [
        db_time(since)
    ]


def _latency_bucket() -> str:
    """SQL for the histogram bucket of e.latency_ms, as posture.sli.histogram_bucket gives it
    (bucket i holds bounds[i-1] < latency <= bounds[i]); -1 when there is no latency."""
    whens = " ".join(
        f"WHEN e.latency_ms <= {bound!r} THEN {i}" for i, bound in enumerate(LATENCY_BOUNDS_MS)
    )
    return f"CASE WHEN e.latency_ms IS NULL THEN -1 {whens} ELSE {len(LATENCY_BOUNDS_MS)} END"


# 0: enforcement not expected (dry run, warn) or not reported; 1: expected, not applied;
# 2: expected and applied. Decisions covered by an exception are counted by _excepted_add.
_ENFORCEMENT = (
    "CASE WHEN (e.mode IS NULL OR e.mode = 'enforce') AND e.enforced IS NOT NULL "
    "THEN (CASE WHEN e.enforced THEN 2 ELSE 1 END) ELSE 0 END"
)


class _Group(NamedTuple):
    """One group of a range's events as the database counts them (_range_groups)."""

    hour: datetime | str
    source_id: int
    decision: bool
    policy: str
    rule: str
    environment: str
    service: str
    outcome: str | None
    enforcement: int
    latency_bucket: int
    epoch: str
    events: int
    seq_min: int | None  # of the group's source_seq values; None if none was sent
    seq_max: int | None
    sequenced: int  # events that sent a source_seq


def _range_groups(span: tuple, since: datetime | None) -> list[_Group]:
    """The range's events grouped finely enough for both the decision and the sequence
    rollups, in one read of the range (two reads cost half as much again)."""
    where, tail = _span_filter(since)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Without statistics on audit_event (autovacuum off, or rows just loaded) the
            # planner expects a row or two and sorts the range on all the keys to group it;
            # hashing the groups takes less than half the time at any size (docs/benchmarks.md).
            # For this statement only: the setting as it was is put back after it.
            cursor.execute(
                "SELECT current_setting('enable_sort'), set_config('enable_sort', 'off', true)"
            )
            ((enable_sort, _),) = cursor.fetchall()
        cursor.execute(
            f"SELECT {_sql('hour')}, e.source_id, e.kind = 'decision', "  # noqa: S608
            "COALESCE(e.policy, ''), COALESCE(e.rule, ''), COALESCE(e.environment, ''), "
            f"COALESCE(e.service, ''), e.outcome, {_ENFORCEMENT}, {_latency_bucket()}, "
            "COALESCE(e.source_epoch, ''), COUNT(*), MIN(e.source_seq), MAX(e.source_seq), "
            f"COUNT(e.source_seq) FROM audit_event e WHERE {where} "
            "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11",
            [*span, *tail],
        )
        groups = [_Group(*row) for row in cursor.fetchall()]
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('enable_sort', %s, true)", [enable_sort])
    return groups


def _decisions_add(
    span: tuple, since: datetime | None, groups: list[_Group], counted: Counted
) -> None:
    """Fold the range's decision groups into the hourly and daily tables, and into what
    RuleDaily gains."""
    rules = _rules_ensure({(group.policy, group.rule) for group in groups})
    hourly: dict[tuple, dict[str, int]] = {}
    daily: dict[tuple, dict[str, int]] = {}
    for group in groups:
        hour, rule_id, n = _as_utc(group.hour), rules[(group.policy, group.rule)], group.events
        amounts = {"decisions": n}
        if group.enforcement:
            amounts["enforce_expected"] = n
        if group.enforcement == 2:
            amounts["enforce_ok"] = n
        if group.latency_bucket >= 0:
            amounts["latency_observed"] = n
            amounts[LATENCY_COLUMNS[group.latency_bucket]] = n
        source_id, environment, outcome = group.source_id, group.environment, group.outcome
        _add(hourly, (hour, source_id, rule_id, environment, group.service, outcome), amounts)
        _add(daily, (hour.date(), source_id, rule_id, environment, outcome), amounts)
    _excepted_add(span, since, hourly, daily)
    _upsert_sums(DecisionHourly, hourly)
    _upsert_sums(DecisionDaily, daily)
    for (day, _, rule_id, _, outcome), amounts in daily.items():
        _add(counted.rule_days, (day, rule_id), _decision_rule_amounts(outcome, amounts))


# RuleDaily's sums from the other rollups' rows, as posture.selectors.rule_counts_summed() reads
# those rollups (tests/posture/test_daily_rollups.py holds the two equal).


def _decision_rule_amounts(outcome: str, amounts: dict[str, int]) -> dict[str, int]:
    excepted = amounts.get("excepted", 0)
    return {
        "decisions": amounts.get("decisions", 0),
        "denies": amounts.get("decisions", 0) if outcome == "deny" else 0,
        # M2 leaves decisions covered by an exception out of both sides.
        "enforce_expected": amounts.get("enforce_expected", 0)
        - amounts.get("excepted_enforce_expected", 0),
        "enforce_ok": amounts.get("enforce_ok", 0) - amounts.get("excepted_enforce_ok", 0),
        "excepted": excepted,
        "excepted_denies": excepted if outcome == "deny" else 0,
        **{column: amounts[column] for column in LATENCY_COLUMNS if column in amounts},
    }


def _other_rule_amounts(counts: "_Counts") -> dict[tuple[date, int], dict[str, int]]:
    """What the range's violations, remediations and deployments add to RuleDaily."""
    days: dict[tuple[date, int], dict[str, int]] = {}
    for (hour, _, rule_id, *_), amounts in counts.violations.items():
        found = {"violations_opened": amounts.get("opened", 0)}
        found.update((c, amounts[c]) for c in TTD_COLUMNS if c in amounts)
        _add(days, (hour.date(), rule_id), found)
    for (hour, _, rule_id, _, _, status), amounts in counts.remediations.items():
        # Other statuses count in neither, but their row is there all the same.
        n = amounts["remediations"]
        found = {
            "remediations_succeeded": n if status == "succeeded" else 0,
            "remediations_failed": n if status == "failed" else 0,
        }
        _add(days, (hour.date(), rule_id), found)
    for (hour, _, rule_id, _), amounts in counts.deployments.items():
        known = amounts.get("deployments", 0) - amounts.get("lead_unknown", 0)
        found = {"deployments": known}
        found.update((c, amounts[c]) for c in LEAD_TIME_COLUMNS if c in amounts)
        _add(days, (hour.date(), rule_id), found)
    return days


def _excepted_add(span: tuple, since: datetime | None, hourly: dict, daily: dict) -> None:
    """Count as excepted the range's decisions covered by an exception in force when they
    occurred. Only decisions of rules that ever had an active exception are read one by one.

    An exception's period (approval to expiry, or to its revocation) never changes once it
    has begun, so counting at ingest and recounting in a rebuild agree."""
    from posture.exceptions import exception_covers, exception_period_end

    waivers: dict[int, list] = {}
    for waiver in PolicyException.objects.filter(active_from__isnull=False):
        waivers.setdefault(waiver.rule_id, []).append(waiver)
    if not waivers:
        return
    where, tail = _span_filter(since)
    rules = ", ".join(["%s"] * len(waivers))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_sql('hour')}, e.source_id, r.id, COALESCE(e.environment, ''), "  # noqa: S608
            "COALESCE(e.service, ''), e.outcome, COALESCE(e.namespace, ''), "
            f"COALESCE(e.resource, ''), e.occurred_at, {_ENFORCEMENT} "
            "FROM audit_event e JOIN posture_rule r "
            "ON r.policy = COALESCE(e.policy, '') AND r.name = COALESCE(e.rule, '') "
            f"WHERE {where} AND e.kind = 'decision' AND r.id IN ({rules})",
            [*span, *tail, *waivers],
        )
        decisions = cursor.fetchall()
    for (
        hour,
        source_id,
        rule_id,
        environment,
        service,
        outcome,
        namespace,
        resource,
        at,
        enforcement,
    ) in decisions:
        at = _as_utc(at)
        covered = any(
            waiver.active_from <= at < exception_period_end(waiver)
            and any(
                exception_covers(waiver, environment=environment, service=name, resource=resource)
                for name in {service, namespace}
            )
            for waiver in waivers[rule_id]
        )
        if covered:
            hour = _as_utc(hour)
            # Kept apart by enforcement too, so that M2 leaves excepted decisions out of both
            # its numerator and its denominator.
            amounts = {"excepted": 1}
            if enforcement:
                amounts["excepted_enforce_expected"] = 1
            if enforcement == 2:
                amounts["excepted_enforce_ok"] = 1
            _add(hourly, (hour, source_id, rule_id, environment, service, outcome), amounts)
            _add(daily, (hour.date(), source_id, rule_id, environment, outcome), amounts)


def _add(table: dict, key: tuple, amounts: dict[str, int]) -> None:
    row = table.setdefault(key, {})
    for name, amount in amounts.items():
        row[name] = row.get(name, 0) + amount


def _as_utc(value: datetime | str) -> datetime:
    """A bucket time as read back: SQLite gives Django's UTC text, PostgreSQL a datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _sequences_add(groups: list[_Group]) -> None:
    """Into the hourly table and the daily one: an hour's row is folded from its groups', a
    day's from its hours' (the lowest seq_min, the highest seq_max, stored summed)."""
    hourly: dict[tuple, list[int]] = {}
    for group in groups:
        key = (_as_utc(group.hour), group.source_id, group.epoch)
        hour = hourly.setdefault(key, [group.seq_min, group.seq_max, 0])
        hour[0], hour[1] = min(hour[0], group.seq_min), max(hour[1], group.seq_max)
        hour[2] += group.sequenced
    hours = [(*key, *values) for key, values in hourly.items()]
    days: dict[tuple, list[int]] = {}
    for hour, source_id, epoch, low, high, stored in hours:
        day = days.setdefault((hour.date(), source_id, epoch), [low, high, 0])
        day[0], day[1], day[2] = min(day[0], low), max(day[1], high), day[2] + stored
    merge = (
        f"DO UPDATE SET seq_min = {_sql('least')}(t.seq_min, excluded.seq_min), "
        f"seq_max = {_sql('greatest')}(t.seq_max, excluded.seq_max), "
        "stored = t.stored + excluded.stored"
    )
    spans = ["source_id", "epoch", "seq_min", "seq_max", "stored"]
    _executemany(SequenceHourly, ["bucket", *spans], hours, merge)
    _executemany(SequenceDaily, ["day", *spans], [(*k, *v) for k, v in days.items()], merge)


# ---------------------------------------------------------------------------------------------
# Counted in Python: the other kinds (violations, remediations, deployments, inventory,
# heartbeats, triage labels). Read in chain order, so ties resolve the same way every time.

_OTHER_KINDS = (
    EventKind.VIOLATION,
    EventKind.REMEDIATION,
    EventKind.POLICY_DEPLOYMENT,
    EventKind.INVENTORY,
    EventKind.HEARTBEAT,
    EventKind.TRIAGE_LABEL,
)


def _others_add(span: tuple, since: datetime | None, counted: Counted) -> None:
    """Count the range's other kinds into hours from `since` on; episodes and triage whole."""
    source_id, after, upto = span
    events = _rows(source_id, after, upto)
    if not events:
        return
    rules = _rule_ids(events)
    interval = Source.objects.values_list("heartbeat_interval_seconds", flat=True).get(pk=source_id)
    counts = _Counts(since, _Episodes(source_id, events, rules))
    for event in events:
        if event.kind == EventKind.VIOLATION:
            _violation(counts, event, rules)
        elif event.kind == EventKind.REMEDIATION:
            _remediation(counts, event, rules)
        elif event.kind == EventKind.POLICY_DEPLOYMENT:
            _deployment(counts, event, rules)
        elif event.kind == EventKind.INVENTORY:
            _inventory(counts, event)
        elif event.kind == EventKind.HEARTBEAT:
            _heartbeat(counts, event, interval)
        else:
            _triage(event, counted)
    counts.save()
    for key, amounts in _other_rule_amounts(counts).items():
        _add(counted.rule_days, key, amounts)
    counted.heartbeat_days |= {(hour.date(), source) for hour, source in counts.heartbeats}


class _Row(NamedTuple):
    """The columns of an event the Python-counted kinds need (a model instance costs more)."""

    seq: int
    kind: str
    source_id: int
    policy: str | None
    rule: str | None
    occurred_at: datetime
    detected_at: datetime | None
    environment: str | None
    service: str | None
    severity: str | None
    status: str | None
    resource: str | None
    subject: str | None
    canonical: bytes | None  # only for the kinds whose own fields are not typed columns


_WITH_PAYLOAD = (
    EventKind.POLICY_DEPLOYMENT,
    EventKind.INVENTORY,
    EventKind.HEARTBEAT,
    EventKind.TRIAGE_LABEL,
)


_ROW_COLUMNS = [name for name in _Row._fields if name != "canonical"]
# The stored bytes only of the kinds that need them, in the same read.
_ROWS_SQL = (
    f"SELECT {', '.join(_ROW_COLUMNS)}, "  # noqa: S608 (no user input)
    "CASE WHEN kind = ANY(%s) THEN canonical END FROM audit_event "
    "WHERE source_id = %s AND seq > %s AND seq <= %s AND kind = ANY(%s) ORDER BY seq"
)


def _rows(source_id: int, after: int, upto: int) -> list[_Row]:
    """The range's events of the other kinds, in chain order."""
    if connection.vendor == "postgresql":
        # In binary, so that the times are read in C (a busy range holds thousands).
        params = [list(_WITH_PAYLOAD), source_id, after, upto, list(_OTHER_KINDS)]
        return [_Row(*values) for values in execute_prepared(_ROWS_SQL, params, binary=True)]
    payload = Case(When(kind__in=_WITH_PAYLOAD, then=F("canonical")), output_field=BinaryField())
    rows = (
        Event.objects.filter(
            source_id=source_id, seq__gt=after, seq__lte=upto, kind__in=_OTHER_KINDS
        )
        .annotate(payload=payload)
        .order_by("seq")
        .values_list(*_ROW_COLUMNS, "payload")
    )
    return [_Row(*values) for values in rows]


def _rule_ids(events: list[_Row]) -> dict[tuple[str, str], int]:
    """The rules the range's violations and remediations count against, and its deployments
    (against their policy: the rule (policy, ""))."""
    pairs = {
        (e.policy or "", e.rule or "")
        for e in events
        if e.kind in (EventKind.VIOLATION, EventKind.REMEDIATION)
    }
    pairs |= {(e.policy or "", "") for e in events if e.kind == EventKind.POLICY_DEPLOYMENT}
    return _rules_ensure(pairs)


def _rules_ensure(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The ids of these (policy, rule name) pairs; a rule seen for the first time is
    registered, uncatalogued (owner and severity unknown)."""

    def known() -> dict[tuple[str, str], int]:
        rows = Rule.objects.filter(policy__in={policy for policy, _ in pairs})
        return {
            (policy, name): pk
            for pk, policy, name in rows.values_list("pk", "policy", "name")
            if (policy, name) in pairs
        }

    if not pairs:
        return {}
    ids = known()
    if len(ids) < len(pairs):
        Rule.objects.bulk_create(
            [
                Rule(policy=policy, name=name, catalogued=False)
                for policy, name in sorted(pairs - ids.keys())
            ],
            ignore_conflicts=True,
        )
        ids = known()
    return ids


def _payload(event: _Row) -> dict:
    return canonical_loads(bytes(event.canonical))["event"]


class _Counts:
    """Per-table sums of one range, keyed by each table's unique key, then upserted."""

    def __init__(self, since: datetime | None, episodes: "_Episodes") -> None:
        self.since = since
        self.episodes = episodes
        self.violations: dict[tuple, dict[str, int]] = {}
        self.remediations: dict[tuple, dict[str, int]] = {}
        self.deployments: dict[tuple, dict[str, int]] = {}
        self.inventory: dict[tuple, dict] = {}
        self.heartbeats: dict[tuple, dict] = {}

    def counts(self, hour: datetime) -> bool:
        """Whether an event of this hour is counted (a rebuild from `since` skips earlier ones)."""
        return self.since is None or hour >= self.since

    def add(self, table: dict, key: tuple, **amounts: int) -> None:
        if self.counts(key[0]):
            _add(table, key, amounts)

    def save(self) -> None:
        self.episodes.save()
        _upsert_sums(ViolationHourly, self.violations)
        _upsert_sums(RemediationHourly, self.remediations)
        _upsert_sums(DeploymentHourly, self.deployments)
        _upsert_inventory(self.inventory)
        _upsert_heartbeats(self.heartbeats)


def _violation(counts: _Counts, event: _Row, rules: dict) -> None:
    rule_id = rules[(event.policy or "", event.rule or "")]
    seen_at = event.detected_at or event.occurred_at
    key = (
        _hour(seen_at),
        event.source_id,
        rule_id,
        event.environment or "",
        event.service or "",
        event.severity or "",
    )
    if event.status == "resolved":
        counts.add(counts.violations, key, resolved=1)
        counts.episodes.close(event, rule_id)
        return
    amounts = {"opened": 1}
    if event.detected_at is not None:
        seconds = max((event.detected_at - event.occurred_at).total_seconds(), 0.0)
        amounts["ttd_observed"] = 1
        amounts[TTD_COLUMNS[histogram_bucket(seconds, TTD_BOUNDS_SECONDS)]] = 1
    counts.add(counts.violations, key, **amounts)
    counts.episodes.open(event, rule_id)


class _Episodes:
    """The violation episodes one range touches: open ones read once, changes written once.

    Plain lists rather than model instances: a busy range opens thousands of episodes.
    """

    COLUMNS = (
        "source_id",
        "rule_id",
        "resource",
        "environment",
        "service",
        "severity",
        "opened_at",
        "resolved_at",
    )

    def __init__(self, source_id: int, events: list[_Row], rules: dict) -> None:
        resources = sorted({e.resource or "" for e in events if e.kind == EventKind.VIOLATION})
        # (rule id, resource) -> the stored open episode's pk, or a new episode's values.
        self.current: dict[tuple[int, str], int | list] = {
            (rule_id, resource): pk
            for rule_id, resource, pk in _open_episodes(source_id, resources)
        }
        self.created: list[list] = []
        self.closed: list[tuple[datetime, int]] = []

    def open(self, event: _Row, rule_id: int) -> None:
        key = (rule_id, event.resource or "")
        if key in self.current:
            return
        values = [
            event.source_id,
            rule_id,
            event.resource or "",
            event.environment or "",
            event.service or "",
            event.severity or "",
            event.occurred_at,
            None,
        ]
        self.current[key] = values
        self.created.append(values)

    def close(self, event: _Row, rule_id: int) -> None:
        episode = self.current.pop((rule_id, event.resource or ""), None)
        if isinstance(episode, list):
            episode[-1] = event.occurred_at
        elif episode is not None:
            self.closed.append((event.occurred_at, episode))

    def save(self) -> None:
        _insert_rows(ViolationEpisode, self.COLUMNS, self.created)
        if self.closed:
            _execute_many(
                "UPDATE posture_violationepisode SET resolved_at = %s WHERE id = %s",
                [(_param(at), pk) for at, pk in self.closed],
            )


def _open_episodes(source_id: int, resources: list[str]) -> list[tuple[int, str, int]]:
    """(rule id, resource, pk) of the source's open episodes on these resources."""
    if not resources:
        return []
    if connection.vendor == "postgresql":
        # One array parameter: the ORM's `resource__in` prepared each of a busy range's
        # thousands of values in Python and wrote them into the SQL text.
        return execute_prepared(
            "SELECT rule_id, resource, id FROM posture_violationepisode "
            "WHERE source_id = %s AND resolved_at IS NULL AND resource = ANY(%b)",
            [source_id, resources],
            prepare=False,
        )
    found: list[tuple[int, str, int]] = []
    for start in range(0, len(resources), 1000):  # SQLite's limit on bound variables
        found += ViolationEpisode.objects.filter(
            source_id=source_id,
            resolved_at__isnull=True,
            resource__in=resources[start : start + 1000],
        ).values_list("rule_id", "resource", "pk")
    return found


def _remediation(counts: _Counts, event: _Row, rules: dict) -> None:
    key = (
        _hour(event.occurred_at),
        event.source_id,
        rules[(event.policy or "", event.rule or "")],
        event.environment or "",
        event.service or "",
        event.status or "",
    )
    counts.add(counts.remediations, key, remediations=1)


def _deployment(counts: _Counts, event: _Row, rules: dict) -> None:
    payload = _payload(event)
    key = (
        _hour(event.occurred_at),
        event.source_id,
        rules[(event.policy or "", "")],
        event.environment or "",
    )
    known = payload.get("attributes", {}).get("committed_at_known", True) is not False
    committed = datetime.fromisoformat(payload["committed_at"].replace("z", "Z").replace("t", "T"))
    if not known:
        counts.add(counts.deployments, key, deployments=1, lead_unknown=1)
        return
    minutes = max((event.occurred_at - committed).total_seconds() / 60, 0.0)
    column = LEAD_TIME_COLUMNS[histogram_bucket(minutes, LEAD_TIME_BOUNDS_MINUTES)]
    counts.add(counts.deployments, key, deployments=1, **{column: 1})


def _inventory(counts: _Counts, event: _Row) -> None:
    payload = _payload(event)
    key = (_hour(event.occurred_at), event.source_id, event.environment or "", event.service or "")
    if not counts.counts(key[0]):
        return
    latest = counts.inventory.get(key)
    # The latest snapshot of the hour wins; on equal times, the later one in the chain.
    if latest is None or event.occurred_at >= latest["observed_at"]:
        counts.inventory[key] = {
            "observed_at": event.occurred_at,
            "resources_total": payload["resources_total"],
            "resources_covered": payload["resources_covered"],
        }


def slot_seconds(interval_seconds: int) -> int:
    return max(interval_seconds, MIN_SLOT_SECONDS)


def _heartbeat(counts: _Counts, event: _Row, interval: int) -> None:
    payload = _payload(event)
    hour = _hour(event.occurred_at)
    if not counts.counts(hour):
        return
    slot = slot_seconds(interval)
    bit = 1 << int((event.occurred_at - hour).total_seconds() // slot)
    row = counts.heartbeats.setdefault(
        (hour, event.source_id),
        {"heartbeats": 0, "slot_seconds": slot, "slots_seen": 0, "dropped": []},
    )
    row["heartbeats"] += 1
    row["slots_seen"] |= bit
    if "dropped_total" in payload:
        row["dropped"].append(payload["dropped_total"])


def _triage(event: _Row, counted: Counted) -> None:
    """A triage label (an internal event) names the decision it labels by chain position.
    The latest label counts."""
    attributes = _payload(event).get("attributes", {})
    decision = Event.objects.filter(
        source__name=attributes.get("source"), seq=attributes.get("seq")
    ).first()
    if decision is None:
        logger.warning("triage label at seq %s names no stored event", event.seq)
        return
    # The decision's own chain may not be counted yet, so its rule may still be unregistered.
    pair = (decision.policy or "", decision.rule or "")
    rule_id = _rules_ensure({pair})[pair]
    TriageState.objects.update_or_create(
        event_id=decision.pk,
        defaults={
            "label": attributes["label"],
            "labelled_at": event.occurred_at,
            "labelled_by": event.subject or "",
            "note": attributes.get("note", ""),
            "source_id": decision.source_id,
            "rule_id": rule_id,
            "occurred_at": decision.occurred_at,
            "environment": decision.environment or "",
            "service": decision.service or "",
        },
    )
    counted.triage_days.add((decision.occurred_at.astimezone(UTC).date(), rule_id))


def _upsert_sums(model: type, rows: dict[tuple, dict[str, int]]) -> None:
    if not rows:
        return
    key_columns = _key_columns(model)
    measures = sorted({name for amounts in rows.values() for name in amounts})
    added = ", ".join(f"{c} = t.{c} + excluded.{c}" for c in measures)
    # In key order: rows that several sources add to at once (RuleDaily's) are then locked in
    # the same order by every transaction, which cannot deadlock.
    _executemany(
        model,
        key_columns + measures,
        [(*key, *(amounts.get(c, 0) for c in measures)) for key, amounts in sorted(rows.items())],
        f"DO UPDATE SET {added}",
    )


def _upsert_inventory(rows: dict[tuple, dict]) -> None:
    if not rows:
        return
    newer = "excluded.observed_at >= t.observed_at"
    updates = ", ".join(
        f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE t.{c} END"
        for c in ("resources_total", "resources_covered", "observed_at")
    )
    columns = ["observed_at", "resources_total", "resources_covered"]
    _executemany(
        InventoryHourly,
        _key_columns(InventoryHourly) + columns,
        [(*key, *(value[c] for c in columns)) for key, value in rows.items()],
        f"DO UPDATE SET {updates}",
    )


def _upsert_heartbeats(rows: dict[tuple, dict]) -> None:
    if not rows:
        return
    least, greatest = _sql("least"), _sql("greatest")
    updates = (
        "heartbeats = t.heartbeats + excluded.heartbeats, "
        "slots_seen = t.slots_seen | excluded.slots_seen, "
        f"dropped_min = {least}(COALESCE(t.dropped_min, excluded.dropped_min), "
        "COALESCE(excluded.dropped_min, t.dropped_min)), "
        f"dropped_max = {greatest}(COALESCE(t.dropped_max, excluded.dropped_max), "
        "COALESCE(excluded.dropped_max, t.dropped_max))"
    )
    _executemany(
        HeartbeatHourly,
        [
            *_key_columns(HeartbeatHourly),
            "heartbeats",
            "slot_seconds",
            "slots_seen",
            "dropped_min",
            "dropped_max",
        ],
        [
            (
                *key,
                value["heartbeats"],
                value["slot_seconds"],
                value["slots_seen"],
                min(value["dropped"], default=None),
                max(value["dropped"], default=None),
            )
            for key, value in rows.items()
        ],
        f"DO UPDATE SET {updates}",
    )


def _key_columns(model: type) -> list[str]:
    (constraint,) = model._meta.constraints
    return [model._meta.get_field(name).column for name in constraint.fields]


def _executemany(model: type, columns: list[str], rows: list[tuple], on_conflict: str) -> None:
    """Upsert `rows` (unique keys within the call) with INSERT ... ON CONFLICT."""
    key = ", ".join(_key_columns(model))
    _insert_rows(model, columns, rows, f"ON CONFLICT ({key}) {on_conflict}")


def _insert_rows(model: type, columns: Iterable[str], rows: list, tail: str = "") -> None:
    if not rows:
        return
    columns = list(columns)
    into = f"INSERT INTO {model._meta.db_table} AS t ({', '.join(columns)})"
    if connection.vendor != "postgresql":
        placeholders = ", ".join(["%s"] * len(columns))
        _execute_many(
            f"{into} VALUES ({placeholders}) {tail}",
            [[_param(value) for value in row] for row in rows],
        )
        return
    if not tail:
        # Plain inserts (new episodes, recounted days): COPY, whose rows psycopg writes in C.
        with raw_cursor() as cursor:
            names = ", ".join(columns)
            with cursor.copy(f"COPY {model._meta.db_table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    # One statement for all the rows, each column sent as one array: a busy range inserts
    # thousands of rows, and one INSERT a row costs PostgreSQL ~8 times as much. The arrays go
    # in binary (%b): psycopg writes a text array in Python, quoting each element (~0.6 µs a
    # number or string, ~4.6 µs a time, against ~0.2 µs in binary).
    fields = {field.column: field for field in model._meta.concrete_fields}
    arrays = ", ".join(f"%b::{fields[column].db_type(connection)}[]" for column in columns)
    execute_prepared(
        f"{into} SELECT * FROM unnest({arrays}) {tail}",  # noqa: S608 (no user input)
        [list(values) for values in zip(*rows, strict=True)],
    )


def _execute_many(sql: str, rows: list) -> None:
    """One statement for many rows. On PostgreSQL through a server-side binding cursor:
    psycopg then sends them all in one pipeline of prepared statements, where Django's own
    (client-side binding) cursor would quote every value in Python."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        return
    with raw_cursor() as cursor:
        cursor.executemany(sql, rows)


def _param(value: object) -> object:
    return db_time(value) if isinstance(value, datetime) else value
