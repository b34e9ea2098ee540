"""SLI benchmark: the executive summary from rollups against the same summary from raw events.

What it does, in one run on one machine:

1. Generates a ledger of `--events` decision events (default 5,000,000) over the 90 days ending
   now, from 8 sources in 3 environments and 12 services, using the demo catalogue's
   (policy, rule) pairs with the demo estate's hit rates, modes and latency distributions
   (lognormal with a tail), plus a few incidents: a deny storm at the gateway, a latency spike
   with events dropped at the source, an engine outage that reboots into a new sequence epoch,
   a stretch of enforcement failures. Alongside the decisions come what the other SLIs need:
   violations (with time-to-detect), remediations, policy deployments (with commit times),
   heartbeats (with emitted and dropped counters), daily inventory, and a few hundred triage
   labels of denies. Every event is a valid native event; each source's events form a valid
   hash chain (audit.canonical.record_bytes and chain_hash, chain heads updated), written
   straight into audit_event with binary COPY by a few worker processes. Then ANALYZE.
2. Builds the rollups with posture.rollups.rollups_rebuild(), timed (the chains are marked as
   counted first: a rebuild counts each chain up to its cursor).
3. Times posture.selectors.executive_summary(days=90) in this process, set up as gunicorn's
   workers are (posture.wsgi), a warm-up call, then the median of --runs calls: every SLI over
   90 days beside the 90 days before, their daily series, and each framework's compliance
   score and daily score series.
4. Times the same summary computed straight from audit_event by three statements that GROUP
   BY the raw events, both windows at once: decisions by day, rule and latency bucket;
   sequence numbers by day, source and epoch; and one scan of the other kinds (violations,
   remediations, deployments, heartbeats, inventory, triage labels) into a CTE with a GROUP BY
   for each. Their counts go through the same assembly (posture.sli formulas via the
   selectors' figure and framework helpers), and both summaries must be equal, figure by
   figure and score by score.

The report gives the generation and rollup build times, the two paths' times (median and p95
of the runs), the speed-up, PASS/FAIL against the bars of the SLI issue (rollup path under
300 ms, at least 50 times faster than the raw path), and where the rollup path's time goes
(SQL against Python); the figures are also written to bench/results/slis-<timestamp>.json.
Failing a bar is reported, not an error.

The script drops and recreates its scratch database (default `posture_slis_bench`; the name
must contain "bench"). `--reuse` skips steps 1 and 2 and times an existing database again.
This machine's PostgreSQL runs with autovacuum off, so the run ANALYZEs what it wrote.

Run from the repository root (a full run takes about 10 minutes on 2 cores):

    .venv/bin/python bench/slis.py                       # the issue's 5 million (make bench-slis)
    .venv/bin/python bench/slis.py --events 300000 --database-url \\
        postgres://postgres@127.0.0.1:5432/posture_slis_bench_small
"""

import argparse
import bisect
import cProfile
import gc
import io
import math
import multiprocessing
import os
import pstats
import random
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

import orjson
import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ingest import (  # noqa: E402  (bench/ingest.py: the shared database and report helpers)
    BenchError,
    cpu_busy,
    database_name,
    git_state,
    percentile,
    postgresql_settings,
    recreate_database,
    step,
)

from audit.canonical import GENESIS_HASH, canonical_json, chain_hash, record_bytes  # noqa: E402
from audit.demo import DEMO_SOURCES, DIURNAL, _target_resources  # noqa: E402
from audit.demo import Rule as DemoRule  # noqa: E402
from audit.events import typed_columns, validate_event  # noqa: E402
from audit.storage import _PG_TYPES, EVENT_COLUMNS  # noqa: E402
from posture.sli import LATENCY_BOUNDS_MS, LEAD_TIME_BOUNDS_MINUTES, TTD_BOUNDS_SECONDS  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
CATALOGUE = REPO / "posture" / "data" / "demo-catalogue.yaml"

# The bars of the SLI issue.
BAR_ROLLUP_MS = 300.0
BAR_SPEEDUP = 50.0

DAYS = 90
SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TRIAGE_LABELS = 300  # denies labelled by a person (M4), a few of them twice

# ---------------------------------------------------------------------------------------------
# The estate: 8 sources built on the demo estate's engines and rules (audit/demo.py), which
# the demo catalogue maps to the three frameworks.

SERVICES = (
    "payments", "checkout", "identity", "ledger-api", "web-frontend", "search",
    "billing", "catalog", "notifications", "orders", "inventory", "reporting",
)  # fmt: skip
_SERVICE_WEIGHTS = (5, 5, 3, 3, 6, 3, 2, 3, 2, 4, 2, 1)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    engine: str  # the demo source whose rules, latency and violation rate it has
    environments: tuple[tuple[str, float], ...]  # where its events happen, with weights
    share: float  # of all decisions
    heartbeat_interval_seconds: int


_NONPROD = (("staging", 0.5), ("dev", 0.5))
SOURCES = (
    SourceSpec("gateway-prod", "gateway", "gateway-prod", (("prod", 1),), 0.30, 300),
    SourceSpec("gateway-staging", "gateway", "gateway-prod", (("staging", 1),), 0.08, 300),
    SourceSpec("opa-prod", "opa", "opa-prod", (("prod", 1),), 0.22, 300),
    SourceSpec("opa-nonprod", "opa", "opa-prod", (("staging", 0.6), ("dev", 0.4)), 0.07, 300),
    SourceSpec("gatekeeper-prod", "gatekeeper", "gatekeeper-prod", (("prod", 1),), 0.13, 600),
    SourceSpec("gatekeeper-staging", "gatekeeper", "gatekeeper-prod", (("staging", 1),), 0.05, 600),
    SourceSpec("kyverno-nonprod", "kyverno", "kyverno-staging", _NONPROD, 0.11, 300),
    SourceSpec("ci-gate", "ci", "ci-gate", (("dev", 0.7), ("prod", 0.3)), 0.04, 900),
)  # fmt: skip
_ENGINES = {source.name: source for source in DEMO_SOURCES}

# Incidents, as (days before the end, hour of day it starts, hours it lasts).
STORM = ("gateway-prod", 20, 10, 6)  # a client retries with expired tokens: denies
SPIKE = ("opa-prod", 8, 13, 3)  # a slow release: latency x30, errors, drops at the source
OUTAGE = ("gatekeeper-staging", 45, 2, 3)  # nothing at all, then a reboot (a new epoch)
PLUGIN = ("gateway-staging", 60, 9, 4)  # a broken plugin: decisions not enforced


@dataclass(frozen=True)
class Window:
    start_us: int
    end_us: int


def _span(window: Window, incident: tuple) -> tuple[int, int]:
    _, days_before, hour, hours = incident
    day = (window.end_us // DAY_US - days_before) * DAY_US
    return day + hour * HOUR_US, day + (hour + hours) * HOUR_US


def _hour_slots(window: Window) -> list[tuple[int, int]]:
    """(start, length) of each hour of the window, clipped to it."""
    slots = []
    hour = window.start_us // HOUR_US * HOUR_US
    while hour < window.end_us:
        start, end = max(hour, window.start_us), min(hour + HOUR_US, window.end_us)
        slots.append((start, end - start))
        hour += HOUR_US
    return slots


def decisions_per_source(total: int) -> list[int]:
    """Each source's share of `total`, adding up to exactly `total` (largest remainder)."""
    raw = [total * source.share / sum(s.share for s in SOURCES) for source in SOURCES]
    counts = [int(value) for value in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def hourly_counts(spec: SourceSpec, window: Window, total: int) -> list[int]:
    """Decisions in each hour slot: diurnal, quieter at weekends, none during an outage;
    cumulative rounding, so they add up to exactly `total`."""
    engine = _ENGINES[spec.engine]
    outage = _span(window, OUTAGE) if spec.name == OUTAGE[0] else (0, 0)
    weights = []
    for start, length in _hour_slots(window):
        moment = time.gmtime(start // SECOND_US)
        weight = DIURNAL[moment.tm_hour] * length / HOUR_US
        if moment.tm_wday >= 5:
            weight *= engine.weekend_factor
        if outage[0] <= start < outage[1]:
            weight = 0.0
        weights.append(weight)
    scale = total / sum(weights)
    counts, done = [], 0
    for cumulative in accumulate(weights):
        upto = round(cumulative * scale)
        counts.append(upto - done)
        done = upto
    return counts


# ---------------------------------------------------------------------------------------------
# One source's chain, built in a worker process.


class _TimeText:
    """RFC 3339 texts and datetimes of microsecond instants (one strftime an hour)."""

    def __init__(self) -> None:
        self.hour = -1
        self.prefix = ""
        self.hour_dt = EPOCH

    def __call__(self, us: int) -> tuple[str, datetime]:
        hour, rest = divmod(us, HOUR_US)
        if hour != self.hour:
            self.hour = hour
            self.prefix = time.strftime("%Y-%m-%dT%H:", time.gmtime(hour * 3600))
            self.hour_dt = EPOCH + timedelta(hours=hour)
        minute, micro = divmod(rest, MINUTE_US)
        second, micro = divmod(micro, SECOND_US)
        return (
            f"{self.prefix}{minute:02d}:{second:02d}.{micro:06d}Z",
            self.hour_dt + timedelta(microseconds=rest),
        )


def _iso(us: int) -> str:
    return _TimeText()(us)[0]


@dataclass
class ChainResult:
    source_id: int
    name: str
    seq: int
    hash: str
    kinds: dict[str, int]
    canonical_bytes: int


class Chain:
    """One source: its events in emission order, chained and ready for COPY."""

    CHECK_EVERY = 25_000  # every so many decisions, check the fast row against the product

    def __init__(
        self, spec: SourceSpec, source_id: int, window: Window, decisions: int, seed: int
    ) -> None:
        self.spec = spec
        self.engine = _ENGINES[spec.engine]
        self.source_id = source_id
        self.window = window
        self.rng = random.Random(seed)
        self.seq = 0
        self.prev_hash = GENESIS_HASH
        self.epoch = self._epoch_name(window.start_us)
        self.source_seq = 0
        self.dropped_total = 0
        self.received_us = 0
        self.received = ("", EPOCH)
        self.times = _TimeText()
        self.received_times = _TimeText()
        self.kinds: dict[str, int] = {}
        self.canonical_bytes = 0
        self.decisions_made = 0
        self.slots = _hour_slots(window)
        self.counts = hourly_counts(spec, window, decisions)
        self.storm = _span(window, STORM) if spec.name == STORM[0] else (0, 0)
        self.spike = _span(window, SPIKE) if spec.name == SPIKE[0] else (0, 0)
        self.outage = _span(window, OUTAGE) if spec.name == OUTAGE[0] else (0, 0)
        self.plugin = _span(window, PLUGIN) if spec.name == PLUGIN[0] else (0, 0)
        self.rebooted = False
        self.rules = self.engine.rules
        self.rule_weights = list(accumulate(rule.weight for rule in self.rules))
        self.service_weights = list(accumulate(_SERVICE_WEIGHTS))
        self.env_names = [name for name, _ in spec.environments]
        self.env_weights = list(accumulate(weight for _, weight in spec.environments))
        self.targets = {
            (rule.target, service): _target_resources(rule.target, service)
            for rule in self.rules
            for service in SERVICES
        }
        self.subjects = {
            "workload": ("system:serviceaccount:argocd:argocd-application-controller",
                         "system:serviceaccount:kube-system:replicaset-controller",
                         "user:oncall@example.com"),
            "route": ("client/web-app", "client/checkout-ios", "client/android-app",
                      "client/partner-acme"),
            "call": tuple(f"spiffe://example.com/ns/{s}/sa/{s}" for s in SERVICES),
            "image": ("pipeline/github-actions",),
            "terraform": ("pipeline/atlantis",),
            "kms-key": ("terraform@ci.example.com",),
            "iam-role": ("terraform@ci.example.com",),
            "bucket": ("terraform@ci.example.com", "user:oncall@example.com"),
        }  # fmt: skip
        self.log_median = math.log(self.engine.latency_median_ms)
        self.clusters = [f"{env}-{spec.kind}-{n}" for env in self.env_names for n in "ab"]
        self.engine_version = f"{spec.kind}/{1 + seed % 3}.{seed % 17}.{seed % 5}"
        self.versions: dict[str, str] = {}
        self.others = self._others()
        self.next_other = 0

    def _epoch_name(self, boot_us: int) -> str:
        return f"{self.spec.name}@{time.strftime('%Y%m%dT%H%MZ', time.gmtime(boot_us // 1e6))}"

    # -- events other than decisions, made up front: (emitted at, order, event, occurred at)

    def _others(self) -> list[tuple]:
        items: list[tuple] = []
        items += self._deployments()
        items += self._violations()
        items += self._heartbeats()
        items += self._inventory()
        items.sort(key=lambda item: (item[0], item[1]))
        return items

    def _environment(self) -> str:
        return self.env_names[
            bisect.bisect(self.env_weights, self.rng.random() * self.env_weights[-1])
        ]

    def _deployments(self) -> list[tuple]:
        rng, start, end = self.rng, self.window.start_us, self.window.end_us
        items = []
        for policy in dict.fromkeys(rule.policy for rule in self.rules):
            major, minor, patch = rng.randint(1, 3), rng.randint(0, 9), 0
            self.versions[policy] = f"{major}.{minor}.{patch}"
            count = max(1, round(rng.randint(6, 12) * (end - start) / (DAY_US * DAYS)))
            moments = sorted(
                (start + rng.randrange((end - start) // DAY_US) * DAY_US
                 + rng.randint(9 * HOUR_US, 17 * HOUR_US))
                for _ in range(count)
            )  # fmt: skip
            for at in moments:
                if at >= end:
                    continue
                previous = f"{major}.{minor}.{patch}"
                if rng.random() < 0.7:
                    patch += 1
                else:
                    minor, patch = minor + 1, 0
                lead = rng.lognormvariate(math.log(12 * MINUTE_US), 0.7)
                if rng.random() < 0.05:
                    lead = rng.uniform(1, 6) * HOUR_US  # stuck in review: misses M5's target
                event = {
                    "kind": "policy_deployment",
                    "occurred_at": _iso(at),
                    "committed_at": _iso(at - int(lead)),
                    "policy": policy,
                    "policy_version": f"{major}.{minor}.{patch}",
                    "environment": self._environment(),
                    "subject": "release-bot",
                    "attributes": {"commit": f"{rng.getrandbits(28):07x}", "previous": previous},
                }
                items.append((at, 0, event, at))
        return items

    _DETECT = {  # median, sigma of the lognormal time from a violation to its detection
        "critical": (40 * SECOND_US, 0.6),
        "high": (60 * SECOND_US, 0.7),
        "medium": (90 * SECOND_US, 0.7),
        "low": (120 * SECOND_US, 0.8),
        "info": (120 * SECOND_US, 0.8),
    }

    def _violations(self) -> list[tuple]:
        rng, start, end = self.rng, self.window.start_us, self.window.end_us
        weights = list(accumulate(rule.hit_rate * rule.weight for rule in self.rules))
        share = self.spec.share / sum(s.share for s in SOURCES if s.engine == self.spec.engine)
        count = int(self.engine.violations_per_day * 1.5 * share * (end - start) / DAY_US)
        items = []
        for number in range(count):
            rule = self.rules[bisect.bisect(weights, rng.random() * weights[-1])]
            service = rng.choices(SERVICES, cum_weights=self.service_weights)[0]
            resource = rng.choice(self.targets[(rule.target, service)])[0]
            environment = self._environment()
            began = start + rng.randrange(end - start)
            median, sigma = self._DETECT[rule.severity]
            lag = int(rng.lognormvariate(math.log(median), sigma))
            if rng.random() < 0.02:
                lag = int(rng.uniform(6, 45) * MINUTE_US)  # a missed audit cycle: breaks M10
            detected = began + lag
            if detected >= end:
                continue
            ident = f"{self.spec.name}-v{number}"
            base = {
                "kind": "violation",
                "policy": rule.policy,
                "rule": rule.name,
                "severity": rule.severity,
                "service": service,
                "environment": environment,
                "resource": resource,
                "reason": rule.reason,
                "attributes": {"violation_id": ident},
            }
            if rule.target == "workload":
                base["namespace"] = service
            opened = {**base, "status": "open", "occurred_at": _iso(began)}
            opened["detected_at"] = _iso(detected)
            items.append((detected, 1, opened, began))
            fixed = None
            if rule.fix:
                at = detected + int(rng.lognormvariate(math.log(3 * MINUTE_US), 0.6))
                for attempt in (1, 2):
                    roll = rng.random()
                    status = "succeeded" if roll < 0.95 else "failed" if roll < 0.985 else "skipped"
                    if at < end:
                        fix = {k: v for k, v in base.items() if k not in ("kind", "severity")}
                        fix |= {"kind": "remediation", "status": status, "occurred_at": _iso(at)}
                        fix |= {"subject": "remediation-bot", "action": rule.fix}
                        fix["attributes"] = {"violation_id": ident, "attempt": attempt}
                        items.append((at, 2, fix, at))
                    if status == "succeeded":
                        fixed = at + int(rng.uniform(20, 90) * SECOND_US)
                    if status != "failed":
                        break
                    at += 30 * MINUTE_US
            if fixed is None and rng.random() < 0.7:
                fixed = detected + int(rng.lognormvariate(math.log(12 * HOUR_US), 0.9))
            if fixed is not None:
                seen = fixed + int(rng.uniform(30, 300) * SECOND_US)
                if seen < end:
                    resolved = {**base, "status": "resolved", "occurred_at": _iso(fixed)}
                    resolved["detected_at"] = _iso(seen)
                    items.append((seen, 3, resolved, fixed))
        return items

    def _heartbeats(self) -> list[tuple]:
        rng, interval = self.rng, self.spec.heartbeat_interval_seconds * SECOND_US
        items = []
        tick = self.window.start_us + rng.randrange(interval)
        while tick < self.window.end_us - 2 * SECOND_US:
            at = tick + rng.randrange(2 * SECOND_US)
            event = {
                "kind": "heartbeat",
                "occurred_at": _iso(at),
                "interval_seconds": self.spec.heartbeat_interval_seconds,
                "attributes": {"engine": self.engine_version},
            }
            items.append((at, 4, event, at))
            tick += interval
        return items

    def _inventory(self) -> list[tuple]:
        rng, start, end = self.rng, self.window.start_us, self.window.end_us
        items = []
        midnight = (start // DAY_US + 1) * DAY_US
        while midnight < end:
            progress = (midnight - start) / (end - start)
            for environment in self.env_names:
                at = midnight + 7 * MINUTE_US + rng.randrange(MINUTE_US)
                if at >= end:
                    continue
                total = int(self.engine.inventory_total * (1 + 0.003 * (midnight - start) / DAY_US))
                coverage = min(0.97, max(0.85, 0.86 + 0.1 * progress + rng.uniform(-0.01, 0.01)))
                event = {
                    "kind": "inventory",
                    "occurred_at": _iso(at),
                    "environment": environment,
                    "resources_total": total,
                    "resources_covered": math.ceil(total * coverage),
                    "attributes": {"resource_type": self.engine.inventory_type},
                }
                items.append((at, 5, event, at))
            midnight += DAY_US
        return items

    # -- the chain

    def _received(self, emitted_us: int) -> tuple[str, datetime]:
        """Events reach Posture in batches every 5 s; received_at never goes back."""
        at = max(self.received_us, (emitted_us // (5 * SECOND_US) + 1) * 5 * SECOND_US + 250_000)
        at = min(at, self.window.end_us + 30 * SECOND_US)
        if at != self.received_us:
            self.received_us = at
            self.received = self.received_times(at)
        return self.received

    def _sequence(self, emitted_us: int) -> bool:
        """Number the next emitted event; False while the source is down (nothing is sent)."""
        if self.outage[0] <= emitted_us < self.outage[1]:
            return False
        if self.outage[1] and emitted_us >= self.outage[1] and not self.rebooted:
            self.rebooted = True
            self.epoch, self.source_seq, self.dropped_total = self._epoch_name(self.outage[1]), 0, 0
        if self.rng.random() < 2e-6:
            self.source_seq += 1  # lost in transit: a gap in the source's numbers
        self.source_seq += 1
        return True

    def _row(self, event: dict, columns: list | tuple, emitted_us: int) -> tuple:
        event_bytes = canonical_json(event)
        received_text, received_at = self._received(emitted_us)
        self.seq += 1
        canonical = record_bytes(
            event_bytes=event_bytes, received_at=received_text, seq=self.seq, source=self.spec.name
        )
        digest = chain_hash(self.prev_hash, canonical)
        row = (self.source_id, self.seq, received_at, self.prev_hash, digest, canonical, *columns)
        self.prev_hash = digest
        self.canonical_bytes += len(canonical)
        return row

    def _other_row(self, item: tuple) -> tuple | None:
        emitted, _, event, _ = item
        if not self._sequence(emitted):
            return None
        event = dict(event)
        event["event_id"] = f"{self.epoch}-{self.source_seq}"
        event["source_seq"] = self.source_seq
        event["source_epoch"] = self.epoch
        kind = event["kind"]
        if kind == "heartbeat":
            event["emitted_total"] = self.source_seq
            event["dropped_total"] = self.dropped_total
        elif kind == "policy_deployment":
            self.versions[event["policy"]] = event["policy_version"]
        record = validate_event(event, 0, default_environment="")
        if not hasattr(record, "event_bytes"):
            raise BenchError(f"generated an invalid {kind} event: {record}")
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return self._row(event, typed_columns(event), emitted)

    def rows(self, day_start: int, day_end: int):
        """This source's rows emitted in [day_start, day_end), in chain order."""
        others, rng = self.others, self.rng
        random_ = rng.random
        rules, rule_weights, rule_total = self.rules, self.rule_weights, self.rule_weights[-1]
        services, service_weights = SERVICES, self.service_weights
        service_total = service_weights[-1]
        env_names, env_weights = self.env_names, self.env_weights
        one_env = env_names[0] if len(env_names) == 1 else None
        targets, subjects, times = self.targets, self.subjects, self.times
        log_median, sigma = self.log_median, self.engine.latency_sigma
        traced = self.engine.traced
        failure = self.engine.failure_reason
        storm, spike, plugin = self.storm, self.spike, self.plugin
        clusters, versions = self.clusters, self.versions
        storm_rules = {
            rule.name: rule for rule in rules if rule.name in ("jwt-required", "rate-limit")
        }
        first = bisect.bisect_left(self.slots, (day_start, -1))
        for index in range(first, len(self.slots)):
            slot_start, slot_length = self.slots[index]
            if slot_start >= day_end:
                break
            moments = sorted([random_() for _ in range(self.counts[index])])
            for fraction in moments:
                at = slot_start + int(fraction * slot_length)
                while self.next_other < len(others) and others[self.next_other][0] <= at:
                    row = self._other_row(others[self.next_other])
                    self.next_other += 1
                    if row is not None:
                        yield row
                # A decision.
                rule = rules[bisect.bisect(rule_weights, random_() * rule_total)]
                service = services[bisect.bisect(service_weights, random_() * service_total)]
                environment = (
                    one_env or env_names[bisect.bisect(env_weights, random_() * env_weights[-1])]
                )
                latency = rng.lognormvariate(log_median, sigma)
                if random_() < 0.01:
                    latency *= 8  # garbage collection, cold caches: the tail p99 shows
                subject = None
                outcome, enforced, reason = "allow", True, None
                if storm[0] <= at < storm[1] and random_() < 0.5:
                    rule = storm_rules["jwt-required" if random_() < 0.55 else "rate-limit"]
                    service, subject = "checkout", "client/checkout-ios"
                    if random_() < 0.85:
                        outcome, reason = "deny", f"{rule.reason} (client/checkout-ios 5.2.0)"
                elif spike[0] <= at < spike[1] and rule.policy == "service-authz":
                    latency *= 30
                    if random_() < 0.04:  # the decision log buffer overflows: dropped
                        self.source_seq += 1
                        self.dropped_total += 1
                    if random_() < 0.03:
                        outcome, enforced, reason = "error", False, failure
                elif plugin[0] <= at < plugin[1] and random_() < 0.02:
                    outcome, enforced, reason = "error", False, failure
                elif random_() < 0.0004:
                    outcome, enforced, reason = "error", False, failure
                    latency = max(latency, 250.0)
                elif random_() < rule.hit_rate:
                    outcome, reason = _hit_outcome(rule), rule.reason
                if not self._sequence(at):
                    continue
                resource, action = rng.choice(targets[(rule.target, service)])
                if subject is None:
                    subject = rng.choice(subjects[rule.target])
                text, occurred = times(at)
                latency = round(latency, 3)
                seq_no = self.source_seq
                event_id = f"{self.epoch}-{seq_no}"
                version = versions[rule.policy]
                event = {
                    "event_id": event_id,
                    "kind": "decision",
                    "occurred_at": text,
                    "source_seq": seq_no,
                    "source_epoch": self.epoch,
                    "policy": rule.policy,
                    "rule": rule.name,
                    "policy_version": version,
                    "outcome": outcome,
                    "mode": rule.mode,
                    "enforced": enforced,
                    "latency_ms": latency,
                    "environment": environment,
                    "service": service,
                    "resource": resource,
                    "subject": subject,
                    "action": action,
                    "attributes": {
                        "cluster": clusters[int(random_() * len(clusters))],
                        "decision_id": f"{rng.getrandbits(64):016x}",
                    },
                }
                namespace = trace_id = None
                if rule.target == "workload":
                    event["namespace"] = namespace = service
                if reason is not None:
                    event["reason"] = reason
                if traced:
                    event["trace_id"] = trace_id = f"{rng.getrandbits(128):032x}"
                columns = (
                    event_id, "decision", occurred, seq_no, self.epoch, rule.policy, rule.name,
                    version, outcome, rule.mode, enforced, latency, None, environment, service,
                    namespace, resource, subject, action, None, None, reason, trace_id,
                )  # fmt: skip
                self.decisions_made += 1
                if self.decisions_made % self.CHECK_EVERY == 1:
                    self._check(event, columns)
                row = self._row(event, columns, at)
                yield row
        while self.next_other < len(others) and others[self.next_other][0] < day_end:
            row = self._other_row(others[self.next_other])
            self.next_other += 1
            if row is not None:
                yield row

    def _check(self, event: dict, columns: tuple) -> None:
        """The fast row must be what ingest would store: a valid event, the same columns."""
        record = validate_event(event, 0, default_environment="")
        if not hasattr(record, "event_bytes"):
            raise BenchError(f"generated an invalid decision: {record}")
        if tuple(typed_columns(event)) != columns or record.columns != columns:
            raise BenchError(f"typed columns differ from audit.events.typed_columns: {event}")

    def result(self) -> ChainResult:
        self.kinds["decision"] = self.decisions_made
        return ChainResult(
            self.source_id, self.spec.name, self.seq, self.prev_hash, self.kinds,
            self.canonical_bytes,
        )  # fmt: skip


def _hit_outcome(rule: DemoRule) -> str:
    if rule.mode == "dry_run":
        return "audit"
    if rule.mode == "warn":
        return "warn"
    return rule.effect


_COPY = "COPY audit_event ({}) FROM STDIN (FORMAT BINARY)".format(
    ", ".join(f'"{name}"' for name in EVENT_COLUMNS)
)


def _generate(job: tuple) -> list[ChainResult]:
    """A worker process: its sources' chains, a day at a time, one COPY transaction a day."""
    url, sources, window, worker, seed = job
    chains = [
        Chain(SOURCES[index], source_id, window, decisions, seed * 1000 + index)
        for index, source_id, decisions in sources
    ]
    first_day = window.start_us // DAY_US
    last_day = (window.end_us - 1) // DAY_US
    with psycopg.connect(url) as connection:
        connection.execute("SET synchronous_commit = off")
        for day in range(first_day, last_day + 1):
            with connection.cursor() as cursor, cursor.copy(_COPY) as copy:
                copy.set_types([_PG_TYPES[name] for name in EVENT_COLUMNS])
                for chain in chains:
                    for row in chain.rows(day * DAY_US, (day + 1) * DAY_US):
                        copy.write_row(row)
            connection.commit()
            if worker == 0 and (day - first_day) % 15 == 14:
                print(f"  day {day - first_day + 1} of {last_day - first_day + 1}", flush=True)
    return [chain.result() for chain in chains]


def generate(url: str, source_ids: list[int], window: Window, events: int, workers: int) -> dict:
    """Write every chain with `workers` processes (sources shared out by volume)."""
    counts = decisions_per_source(events)
    jobs: list[list[tuple]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for index in sorted(range(len(SOURCES)), key=lambda i: -counts[i]):
        target = loads.index(min(loads))
        jobs[target].append((index, source_ids[index], counts[index]))
        loads[target] += counts[index]
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        parts = pool.map(
            _generate, [(url, job, window, n, 20261126 + n) for n, job in enumerate(jobs)]
        )
    seconds = time.perf_counter() - started
    results = [result for part in parts for result in part]
    with psycopg.connect(url, autocommit=True) as connection:
        for result in results:
            connection.execute(
                "UPDATE audit_chainhead SET seq = %s, hash = %s, updated_at = now() "
                "WHERE source_id = %s",
                [result.seq, result.hash, result.source_id],
            )
    kinds: dict[str, int] = {}
    for result in results:
        for kind, n in result.kinds.items():
            kinds[kind] = kinds.get(kind, 0) + n
    rows = sum(result.seq for result in results)
    return {
        "seconds": round(seconds, 1),
        "rows": rows,
        "rows_per_second": round(rows / seconds),
        "events_by_kind": dict(sorted(kinds.items())),
        "mean_canonical_bytes": round(sum(r.canonical_bytes for r in results) / rows),
        "workers": workers,
    }


# ---------------------------------------------------------------------------------------------
# Django, in this process.

SOURCE_NAMES = [source.name for source in SOURCES]


def django_setup(url: str, tmp_dir: Path) -> None:
    from audit.signing import write_new_key

    key_file = tmp_dir / "signing-key.pem"
    write_new_key(key_file)
    for name in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="posture.settings",
        DATABASE_URL=url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        POSTURE_SIGNING_KEY_FILE=str(key_file),
        POSTURE_VAR_DIR=str(tmp_dir / "var"),
        DATABASE_CONN_MAX_AGE="3600",
        LOG_LEVEL="WARNING",
    )
    # Set up as gunicorn's workers are (posture/wsgi.py), garbage collector settings included:
    # they are the processes that serve the dashboard.
    import posture.wsgi  # noqa: F401


def prepare_schema() -> list[int]:
    """Migrate, load the demo catalogue, create the sources; their ids in SOURCES order."""
    from django.core.management import call_command

    from audit.services import source_create
    from posture.catalogue import catalogue_load

    call_command("migrate", verbosity=0, interactive=False)
    loaded = catalogue_load(path=CATALOGUE)
    print(f"  catalogue: {loaded.rules_created} rules, {loaded.mappings} control mappings")
    return [
        source_create(
            name=spec.name,
            kind=spec.kind,
            environment=spec.environments[0][0],
            owner="platform",
            heartbeat_interval_seconds=spec.heartbeat_interval_seconds,
        ).pk
        for spec in SOURCES
    ]


def triage_some_denies(count: int, window: Window) -> int:
    """A person labels `count` denies spread over the window (a tenth of them twice)."""
    from django.contrib.auth import get_user_model

    from audit.models import Event
    from posture.services import triage_label

    user = get_user_model().objects.create_user(username="bench-analyst", password=None)
    rng = random.Random(7)
    labelled = 0
    step_us = (window.end_us - window.start_us) // count
    for n in range(count):
        at = EPOCH + timedelta(microseconds=window.start_us + n * step_us)
        event = (
            Event.objects.filter(
                kind="decision", outcome="deny", occurred_at__gte=at,
                occurred_at__lt=at + timedelta(hours=6),
            )
            .order_by("occurred_at", "id")
            .first()
        )  # fmt: skip
        if event is None:
            continue
        label = "false_positive" if rng.random() < 0.03 else "confirmed"
        triage_label(event=event, label=label, note="bench", user=user)
        labelled += 1
        if rng.random() < 0.1:  # a second look changes the verdict: the latest label counts
            other = "confirmed" if label == "false_positive" else "false_positive"
            triage_label(event=event, label=other, note="bench, second look", user=user)
            labelled += 1
    return labelled


def build_rollups() -> dict:
    """Mark every chain counted up to its head, then rebuild the rollups from the ledger."""
    from django.db import connection

    from audit.models import ChainHead
    from posture.models import DecisionDaily, DecisionHourly, RollupCursor
    from posture.rollups import rollups_rebuild

    for source_id, seq in ChainHead.objects.values_list("source_id", "seq"):
        RollupCursor.objects.update_or_create(source_id=source_id, defaults={"seq": seq})
    started = time.perf_counter()
    counted = rollups_rebuild()
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "method": "rollups_rebuild() after setting every source's cursor to its chain head",
        "events_counted": counted,
        "seconds": round(seconds, 1),
        "events_per_second": round(counted / seconds),
        "decision_hourly_rows": DecisionHourly.objects.count(),
        "decision_daily_rows": DecisionDaily.objects.count(),
    }


def verify_chains(scope: str) -> dict:
    """audit.verify over one chain (the default) or all of them."""
    from audit.verify import ledger_verify

    source = None if scope == "all" else SOURCE_NAMES[0]
    report = ledger_verify(source_name=source, workers=2 if scope == "all" else 1)
    if not report.ok:
        raise BenchError(f"the generated ledger does not verify: {report.as_dict()}")
    return {
        "scope": source or "all chains",
        "events": report.events_checked,
        "seconds": round(report.seconds, 1),
    }


# ---------------------------------------------------------------------------------------------
# The raw path: the executive summary straight from audit_event.


def _negated(bounds: tuple[float, ...], scale: float = 1) -> str:
    """width_bucket thresholds for "bucket i holds bounds[i-1] < v <= bounds[i]".

    width_bucket(x, t) counts the thresholds <= x; over -bounds reversed and x = -v that is the
    number of bounds >= v, so the bucket index is len(bounds) minus it (overflow: len(bounds)).
    """
    return "ARRAY[" + ", ".join(repr(-b * scale) for b in reversed(bounds)) + "]"


_RAW_DECISIONS = f"""
SELECT date_trunc('day', e.occurred_at) AS day, e.policy, e.rule,
       {len(LATENCY_BOUNDS_MS)} - width_bucket(-e.latency_ms,
                                               {_negated(LATENCY_BOUNDS_MS)}::float8[]) AS bucket,
       count(*),
       count(*) FILTER (WHERE e.outcome = 'deny'),
       count(*) FILTER (WHERE (e.mode IS NULL OR e.mode = 'enforce') AND e.enforced IS NOT NULL),
       count(*) FILTER (WHERE (e.mode IS NULL OR e.mode = 'enforce') AND e.enforced)
FROM audit_event e
WHERE e.kind = 'decision' AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
GROUP BY 1, 2, 3, 4
"""

_RAW_SEQUENCES = """
SELECT date_trunc('day', e.occurred_at) AS day, e.source_id, COALESCE(e.source_epoch, ''),
       min(e.source_seq), max(e.source_seq), count(*)
FROM audit_event e
WHERE e.source_seq IS NOT NULL AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
GROUP BY 1, 2, 3
"""

# Every other kind in one scan of the ledger, then one GROUP BY each. The rows share one shape:
# (what, day, policy, rule, source, key, bucket, n1, n2, n3, at).
_RAW_OTHERS = f"""
WITH rare AS MATERIALIZED (
    SELECT e.id, e.source_id, e.seq, e.kind, e.occurred_at, e.detected_at, e.policy, e.rule,
           e.status, e.environment, e.service,
           CASE WHEN e.kind <> 'violation' AND e.kind <> 'remediation'
                THEN convert_from(e.canonical, 'UTF8')::jsonb -> 'event' END AS payload
    FROM audit_event e
    WHERE e.kind IN ('violation', 'remediation', 'policy_deployment', 'heartbeat', 'inventory',
                     'triage_label')
)
SELECT 'violation', date_trunc('day', COALESCE(r.detected_at, r.occurred_at)), r.policy, r.rule,
       NULL::bigint, NULL::text,
       CASE WHEN r.status IS DISTINCT FROM 'resolved' AND r.detected_at IS NOT NULL
            THEN {len(TTD_BOUNDS_SECONDS)} - width_bucket(
                -GREATEST(EXTRACT(EPOCH FROM r.detected_at - r.occurred_at), 0),
                {_negated(TTD_BOUNDS_SECONDS)}::numeric[]) END,
       count(*) FILTER (WHERE r.status IS DISTINCT FROM 'resolved'), 0::bigint, 0::bigint,
       NULL::timestamptz
FROM rare r
WHERE r.kind = 'violation' AND COALESCE(r.detected_at, r.occurred_at) >= %(start)s
  AND COALESCE(r.detected_at, r.occurred_at) < %(end)s
GROUP BY 2, 3, 4, 7
UNION ALL
SELECT 'remediation', date_trunc('day', r.occurred_at), r.policy, r.rule, NULL, r.status, NULL,
       count(*), 0, 0, NULL
FROM rare r
WHERE r.kind = 'remediation' AND r.occurred_at >= %(start)s AND r.occurred_at < %(end)s
GROUP BY 2, 3, 4, 6
UNION ALL
SELECT 'deployment', date_trunc('day', r.occurred_at), r.policy, '', NULL, NULL,
       CASE WHEN (r.payload -> 'attributes' ->> 'committed_at_known') IS DISTINCT FROM 'false'
            THEN {len(LEAD_TIME_BOUNDS_MINUTES)} - width_bucket(
                -GREATEST(EXTRACT(EPOCH FROM
                    r.occurred_at - (r.payload ->> 'committed_at')::timestamptz), 0),
                {_negated(LEAD_TIME_BOUNDS_MINUTES, 60)}::numeric[]) END,
       count(*), 0, 0, NULL
FROM rare r
WHERE r.kind = 'policy_deployment' AND r.occurred_at >= %(start)s AND r.occurred_at < %(end)s
GROUP BY 2, 3, 7
UNION ALL
SELECT 'heartbeat', date_trunc('day', r.occurred_at), NULL, NULL, r.source_id, NULL, NULL,
       count(DISTINCT (EXTRACT(EPOCH FROM date_trunc('hour', r.occurred_at))::bigint * 100
                       + floor(EXTRACT(EPOCH FROM r.occurred_at - date_trunc('hour', r.occurred_at))
                               / GREATEST(s.heartbeat_interval_seconds, 60))::bigint)),
       min((r.payload ->> 'dropped_total')::bigint), max((r.payload ->> 'dropped_total')::bigint),
       NULL
FROM rare r JOIN audit_source s ON s.id = r.source_id
WHERE r.kind = 'heartbeat' AND r.occurred_at >= %(start)s AND r.occurred_at < %(end)s
GROUP BY 2, 5
UNION ALL
SELECT 'first_heartbeat', NULL, NULL, NULL, r.source_id, NULL, NULL, 0, 0, 0,
       min(date_trunc('hour', r.occurred_at))
FROM rare r
WHERE r.kind = 'heartbeat'
GROUP BY 5
UNION ALL
SELECT 'inventory', latest.day, latest.environment, latest.service, latest.source_id, NULL,
       NULL, latest.total, latest.covered, 0, latest.occurred_at
FROM (
    SELECT DISTINCT ON (1, r.source_id, COALESCE(r.environment, ''), COALESCE(r.service, ''))
           date_trunc('day', r.occurred_at) AS day, r.source_id,
           COALESCE(r.environment, '') AS environment, COALESCE(r.service, '') AS service,
           r.occurred_at, (r.payload ->> 'resources_total')::bigint AS total,
           (r.payload ->> 'resources_covered')::bigint AS covered
    FROM rare r
    WHERE r.kind = 'inventory' AND r.occurred_at >= %(start)s AND r.occurred_at < %(end)s
    ORDER BY 1, r.source_id, COALESCE(r.environment, ''), COALESCE(r.service, ''),
             r.occurred_at DESC, r.seq DESC
) latest
UNION ALL
SELECT 'triage', date_trunc('day', d.occurred_at), d.policy, d.rule, NULL, NULL, NULL,
       count(*), count(*) FILTER (WHERE t.label = 'false_positive'), 0, NULL
FROM (
    SELECT DISTINCT ON (1) (r.payload -> 'attributes' ->> 'event')::bigint AS decision,
           r.payload -> 'attributes' ->> 'label' AS label
    FROM rare r
    WHERE r.kind = 'triage_label'
    ORDER BY 1, r.source_id, r.seq DESC
) t JOIN audit_event d ON d.id = t.decision
WHERE d.occurred_at >= %(start)s AND d.occurred_at < %(end)s
GROUP BY 2, 3, 4
"""


def _has_spans() -> bool:
    """Whether SourceCounts keeps the spans and snapshots behind its sums, which a window's
    totals merge (posture.selectors, since the per-bucket sums stopped adding up)."""
    from posture.selectors import SourceCounts

    return hasattr(SourceCounts(), "seq_spans")


_SPANS = False  # set by raw_summary


@dataclass
class RawTimings:
    decisions: float = 0.0
    sequences: float = 0.0
    others: float = 0.0
    assembly: float = 0.0


def raw_counts(start: datetime, end: datetime, timings: RawTimings) -> tuple:
    """Rule counts by (day, rule id) and source counts by day, for [start, end), from the
    raw events (what the rollups hold, counted again by GROUP BY); and each source's first
    heartbeat hour and heartbeat interval, for the intervals expected."""
    from collections import defaultdict

    from django.db import connection

    from audit.models import Source, SourceKind
    from posture.models import Rule
    from posture.selectors import RuleCounts, SourceCounts

    rules = Rule.objects.values_list("pk", "policy", "name")
    rule_ids = {(policy, name): pk for pk, policy, name in rules}
    engines = set(Source.objects.exclude(kind=SourceKind.INTERNAL).values_list("pk", flat=True))
    by_rule: dict = defaultdict(RuleCounts)
    by_day: dict = defaultdict(SourceCounts)
    params = {"start": start, "end": end}

    def rule(policy, name):
        return rule_ids[(policy or "", name or "")]

    with connection.cursor() as cursor:
        began = time.perf_counter()
        cursor.execute(_RAW_DECISIONS, params)
        for day, policy, name, bucket, n, denies, expected, ok in cursor.fetchall():
            item = by_rule[(day, rule(policy, name))]
            item.decisions += n
            item.denies += denies
            item.enforce_expected += expected
            item.enforce_ok += ok
            if bucket is not None:
                item.latency[bucket] += n
        timings.decisions += time.perf_counter() - began

        began = time.perf_counter()
        cursor.execute(_RAW_SEQUENCES, params)
        for day, source_id, epoch, low, high, stored in cursor.fetchall():
            if source_id in engines:
                item = by_day[day]
                item.seq_stored += stored
                item.seq_expected += high - low + 1
                if _SPANS:
                    item.seq_spans[(source_id, epoch)] = (low, high)
        timings.sequences += time.perf_counter() - began

        began = time.perf_counter()
        cursor.execute(_RAW_OTHERS, params)
        rows = cursor.fetchall()
        timings.others += time.perf_counter() - began

    first_heartbeat = {}
    intervals = dict(Source.objects.values_list("pk", "heartbeat_interval_seconds"))
    inventory: dict = defaultdict(dict)
    for what, day, policy, name, source_id, key, bucket, n1, n2, n3, at in rows:
        if what == "violation":
            item = by_rule[(day, rule(policy, name))]
            item.violations_opened += n1
            if bucket is not None:
                item.ttd[bucket] += n1
        elif what == "remediation":
            item = by_rule[(day, rule(policy, name))]
            item.remediations_succeeded += n1 if key == "succeeded" else 0
            item.remediations_failed += n1 if key == "failed" else 0
        elif what == "deployment":
            item = by_rule[(day, rule(policy, ""))]
            if bucket is not None:
                item.deployments += n1
                item.lead_time[bucket] += n1
        elif what == "triage":
            item = by_rule[(day, rule(policy, name))]
            item.triaged += n1
            item.false_positives += n2
        elif source_id not in engines:
            continue
        elif what == "heartbeat":
            by_day[day].slots_seen += n1
            if n3 is not None:
                by_day[day].dropped += n3 - n2
                if _SPANS:
                    by_day[day].drop_spans[source_id] = (n2, n3)
        elif what == "first_heartbeat":
            first_heartbeat[source_id] = at
        elif what == "inventory":
            # The latest snapshot of each (source, environment, service) in the day.
            inventory[day][(source_id, policy, name)] = (at, n1, n2)
    for day, snapshots in inventory.items():
        by_day[day].resources_total += sum(total for _, total, _ in snapshots.values())
        by_day[day].resources_covered += sum(covered for _, _, covered in snapshots.values())
        if _SPANS:
            by_day[day].snapshots.update(snapshots)
    return by_rule, by_day, first_heartbeat, intervals


def _expected_slots(
    by_day: dict, first_heartbeat: dict, intervals: dict, start: datetime, end: datetime,
    now: datetime,
) -> None:  # fmt: skip
    """Heartbeat intervals expected per day, as posture.selectors.source_counts counts them."""
    from posture.rollups import slot_seconds

    for source_id, first in first_heartbeat.items():
        slot = slot_seconds(intervals[source_id])
        per_hour = -(-3600 // slot)
        hour = max(first, start)
        last = min(end, now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        while hour < last:
            day = datetime.combine(hour.date(), datetime.min.time(), tzinfo=UTC)
            if hour <= now < hour + timedelta(hours=1):
                by_day[day].slots_expected += int((now - hour).total_seconds() // slot) + 1
            else:
                by_day[day].slots_expected += per_hour
            hour += timedelta(hours=1)


def raw_summary(now: datetime, timings: RawTimings, days: int = DAYS) -> dict:
    """executive_summary(days, now) recomputed from the raw events."""
    from collections import defaultdict

    from posture import selectors as s
    from posture.models import Framework, SloTarget

    global _SPANS
    _SPANS = _has_spans()
    window = s.window_last(days=days, now=now)
    previous = s.Window(
        start=window.start - (window.end - window.start), end=window.start, unit=s.DAY
    )
    by_rule, by_day, first_heartbeat, intervals = raw_counts(previous.start, window.end, timings)
    began = time.perf_counter()
    _expected_slots(by_day, first_heartbeat, intervals, previous.start, window.end, now)

    def part(counts: dict, win: s.Window, keyed) -> dict:
        return {key: value for key, value in counts.items() if win.start <= keyed(key) < win.end}

    by_bucket = part(by_rule, window, lambda key: key[0])
    before_rules = part(by_rule, previous, lambda key: key[0])
    engines_by_bucket = part(by_day, window, lambda key: key)
    before_engines = part(by_day, previous, lambda key: key)

    scope = s.SliScope()
    targets_all = list(SloTarget.objects.all())
    org_targets = s.targets_for(scope, targets_all)
    mapping_version = s.mapping_version_current()
    figures = s.figures_from(
        s._window_totals(by_bucket), s._source_window_totals(engines_by_bucket)
    )
    before = s.figures_from(s._window_totals(before_rules), s._source_window_totals(before_engines))
    daily_rules: dict = defaultdict(s.RuleCounts)
    for (bucket, _), counts in by_bucket.items():
        daily_rules[bucket].add(counts)
    series = [
        s.figures_from(
            daily_rules.get(b, s.RuleCounts()), engines_by_bucket.get(b, s.SourceCounts())
        )
        for b in window.buckets()
    ]
    trends = []
    for i, (figure, earlier) in enumerate(
        zip(s._judged(figures, org_targets), before, strict=True)
    ):
        trends.append(
            {
                **figure,
                "previous": earlier.as_dict(),
                "series": [
                    {"bucket": b.isoformat(), "value": day[i].value}
                    for b, day in zip(window.buckets(), series, strict=True)
                ],
            }
        )
    judge = s._judge(
        [(bucket, rule_id, counts.flat()) for (bucket, rule_id), counts in by_bucket.items()],
        targets_all,
    )
    frameworks = []
    for framework in Framework.objects.order_by("name"):
        summary = s._framework_summary(s._framework_map(framework, mapping_version), window, judge)
        summary.pop("verdicts")
        frameworks.append(summary)
    timings.assembly += time.perf_counter() - began
    return {
        "window": window.as_dict(),
        "mapping_version": mapping_version.version if mapping_version else None,
        "figures": trends,
        "frameworks": frameworks,
    }


# ---------------------------------------------------------------------------------------------
# Timing and comparing the two paths.


def _timed(call, runs: int) -> tuple[list[float], list[float], object]:
    """Wall and CPU milliseconds (this process only, so not PostgreSQL's) of `runs` calls."""
    result = None
    times, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return times, cpu, result


def _median(values: list[float]) -> float:
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(values) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _stats(times: list[float], cpu: list[float]) -> dict:
    return {
        "runs": len(times),
        "median_ms": round(_median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "all_ms": [round(t, 1) for t in times],
        "python_cpu_median_ms": round(_median(cpu), 1),
    }


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def first_difference(a: object, b: object, path: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(a.keys() | b.keys(), key=str):
            if key not in a or key not in b:
                return f"{path}.{key}: only on one side"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


KEY_FIGURES = (
    "decision latency p50", "decision latency p95", "decision latency p99",
    "enforcement success rate", "deny rate", "false-positive rate", "deployment lead time p95",
    "policy coverage", "remediation success rate", "audit completeness", "engine availability",
    "violation time-to-detect p95",
)  # fmt: skip


def compare(rollup: dict, raw: dict) -> dict:
    rollup = {key: value for key, value in rollup.items() if key != "rollup_lag_seconds"}
    by_name = {figure["name"]: figure for figure in rollup["figures"]}
    raw_by_name = {figure["name"]: figure for figure in raw["figures"]}
    figures = {}
    for name in KEY_FIGURES:
        a, b = by_name.get(name, {}), raw_by_name.get(name, {})
        figures[name] = {
            "rollups": a.get("value"),
            "raw": b.get("value"),
            "numerator": a.get("numerator"),
            "denominator": a.get("denominator"),
            "agree": a.get("value") == b.get("value")
            and a.get("numerator") == b.get("numerator")
            and a.get("denominator") == b.get("denominator"),
        }
    scores = {
        f["framework"]["slug"]: {"rollups": f["score"]["value"], "raw": g["score"]["value"]}
        for f, g in zip(rollup["frameworks"], raw["frameworks"], strict=True)
    }
    difference = first_difference(rollup, raw)
    return {
        "identical": difference is None,
        "first_difference": difference,
        "figures": figures,
        "framework_scores": scores,
        "formulas": {name: by_name[name]["formula"] for name in KEY_FIGURES if name in by_name},
    }


def rollup_breakdown(now: datetime) -> dict:
    """One rollup-path call with every SQL statement timed: how much is SQL, how much Python."""
    from django.db import connection

    from posture.selectors import executive_summary

    statements: list[tuple[float, str]] = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append(((time.perf_counter() - started) * 1000, sql))

    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        executive_summary(days=DAYS, now=now)
    total = (time.perf_counter() - started) * 1000
    sql_ms = sum(ms for ms, _ in statements)
    slowest = sorted(statements, reverse=True)[:5]
    return {
        "total_ms": round(total, 1),
        "sql_ms": round(sql_ms, 1),
        "python_ms": round(total - sql_ms, 1),
        "statements": len(statements),
        "slowest_statements": [{"ms": round(ms, 1), "sql": sql[:300]} for ms, sql in slowest],
    }


def _judged_afresh(now: datetime) -> dict:
    from posture import selectors

    selectors._VERDICTS.clear()
    return selectors.executive_summary(days=DAYS, now=now)


def profile_rollup_path(now: datetime, lines: int = 25) -> str:
    from posture.selectors import executive_summary

    profiler = cProfile.Profile()
    profiler.enable()
    executive_summary(days=DAYS, now=now)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# The run.


@dataclass
class Results:
    started_at: str
    settings: dict
    machine: dict
    code: dict
    generation: dict = field(default_factory=dict)
    triage_labels: int = 0
    verify: dict = field(default_factory=dict)
    rollups: dict = field(default_factory=dict)
    ledger: dict = field(default_factory=dict)
    rollup_path: dict = field(default_factory=dict)
    rollup_breakdown: dict = field(default_factory=dict)
    raw_path: dict = field(default_factory=dict)
    speedup: float = 0.0
    comparison: dict = field(default_factory=dict)
    bars: list = field(default_factory=list)


def ledger_size() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), pg_total_relation_size('audit_event'), "
            "pg_relation_size('audit_event'), "
            "(SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            " WHERE c.relname LIKE 'posture\\_%%hourly' OR c.relname = 'posture_decisiondaily')"
            " FROM audit_event"
        )
        events, total, heap, rollups = cursor.fetchone()
    return {
        "events": events,
        "audit_event_mb": round(total / 2**20),
        "audit_event_heap_mb": round(heap / 2**20),
        "rollup_tables_mb": round(int(rollups) / 2**20),
    }


def run(args: argparse.Namespace, tmp_dir: Path) -> Results:
    results = Results(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        settings={
            "events": args.events,
            "days": DAYS,
            "sources": len(SOURCES),
            "generation_workers": args.workers,
            "rollup_runs": args.runs,
            "raw_runs": args.raw_runs,
            "database": database_name(args.database_url),
            "reused_database": args.reuse,
        },
        machine={"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        code=git_state(),
    )
    busy = cpu_busy()
    results.machine["cpu_busy_before_start"] = busy
    if busy is not None and busy > 0.10:
        print(f"!! {busy:.0%} of the CPUs were busy before the start: the figures will be low")
    if "bench" not in database_name(args.database_url):
        raise BenchError("the database name must contain 'bench'")

    if not args.reuse:
        step(f"recreating database {database_name(args.database_url)}")
        recreate_database(args.database_url)
    results.machine.update(postgresql_settings(args.database_url))
    django_setup(args.database_url, tmp_dir)
    from django.db import connections

    if not args.reuse:
        step("migrate, demo catalogue, sources")
        source_ids = prepare_schema()
        connections.close_all()  # the workers fork from here
        end_us = (time.time_ns() // 1000) // MINUTE_US * MINUTE_US - MINUTE_US
        window = Window(end_us - DAYS * DAY_US, end_us)
        step(f"generating {args.events:,} decisions and the rest over {DAYS} days "
             f"({args.workers} processes, binary COPY)")  # fmt: skip
        results.generation = generate(
            args.database_url, source_ids, window, args.events, args.workers
        )
        g = results.generation
        print(f"  {g['rows']:,} events in {g['seconds']} s ({g['rows_per_second']:,}/s), "
              f"~{g['mean_canonical_bytes']} canonical bytes each")  # fmt: skip
        step("ANALYZE audit_event")
        with psycopg.connect(args.database_url, autocommit=True) as connection:
            connection.execute("ANALYZE audit_event")
        step(f"triage labels on {TRIAGE_LABELS} denies (posture.services.triage_label)")
        results.triage_labels = triage_some_denies(TRIAGE_LABELS, window)
        if args.verify != "none":
            step(f"verifying {'every chain' if args.verify == 'all' else 'one chain'}")
            results.verify = verify_chains(args.verify)
            print(
                f"  {results.verify['events']:,} events verified in {results.verify['seconds']} s"
            )
        step("building rollups (rollups_rebuild)")
        results.rollups = build_rollups()
        r = results.rollups
        print(f"  {r['events_counted']:,} events in {r['seconds']} s "
              f"({r['events_per_second']:,}/s); {r['decision_daily_rows']:,} daily and "
              f"{r['decision_hourly_rows']:,} hourly decision rows")  # fmt: skip
    results.ledger = ledger_size()

    from posture.selectors import executive_summary

    # What generating and counting left behind is no part of a web worker: out of the
    # collector's way, as posture/wsgi.py does with what a worker loads at start.
    gc.collect()
    gc.freeze()
    now = datetime.now(UTC)
    results.settings["now"] = now.isoformat()
    results.machine["load_average_before_timing"] = load_average()
    step(f"rollup path: executive_summary(days={DAYS}), 1 warm-up + {args.runs} runs")
    first_times, _, _ = _timed(lambda: executive_summary(days=DAYS, now=now), 1)
    times, cpu, rollup = _timed(lambda: executive_summary(days=DAYS, now=now), args.runs)
    results.rollup_path = _stats(times, cpu)
    results.rollup_path["first_call_ms"] = round(first_times[0], 1)
    print(f"  median {results.rollup_path['median_ms']} ms, p95 {results.rollup_path['p95_ms']} ms")
    # A process keeps the rule verdicts it has reached (posture.selectors._VERDICTS); timed
    # again without them, every (day, rule) is judged afresh, as in a new web worker.
    times, cpu, _ = _timed(lambda: _judged_afresh(now), args.runs)
    results.rollup_path["without_kept_verdicts"] = _stats(times, cpu)
    print(
        f"  first call {results.rollup_path['first_call_ms']} ms; without kept verdicts: median "
        f"{results.rollup_path['without_kept_verdicts']['median_ms']} ms"
    )
    results.rollup_breakdown = rollup_breakdown(now)

    step(f"raw path: the same summary by GROUP BY, 1 warm-up + {args.raw_runs} runs")
    raw_summary(now, RawTimings())
    timings = RawTimings()
    times, cpu, raw = _timed(lambda: raw_summary(now, timings), args.raw_runs)
    results.raw_path = _stats(times, cpu)
    results.machine["load_average_after_timing"] = load_average()
    results.raw_path["parts_ms"] = {
        key: round(value * 1000 / args.raw_runs, 1) for key, value in asdict(timings).items()
    }
    print(f"  median {results.raw_path['median_ms']:,} ms")
    results.speedup = round(results.raw_path["median_ms"] / results.rollup_path["median_ms"], 1)
    results.comparison = compare(rollup, raw)
    if args.profile:
        print(profile_rollup_path(now))
    results.bars = [
        {
            "bar": "rollup path, median ms",
            "value": results.rollup_path["median_ms"],
            "target": f"< {BAR_ROLLUP_MS:g}",
            "pass": results.rollup_path["median_ms"] < BAR_ROLLUP_MS,
        },
        {
            "bar": "raw path / rollup path",
            "value": results.speedup,
            "target": f">= {BAR_SPEEDUP:g}",
            "pass": results.speedup >= BAR_SPEEDUP,
        },
        {
            "bar": "both paths give the same summary",
            "value": results.comparison["identical"],
            "target": "identical",
            "pass": results.comparison["identical"],
        },
    ]
    return results


def print_report(results: Results) -> None:
    s, m = results.settings, results.machine
    code = results.code
    changed = f", {len(code['changed_files'])} files changed since" if code["changed_files"] else ""
    print(f"\nCode: commit {code['commit']}{changed}")
    print(
        f"PostgreSQL {m['postgresql_server_version']}, shared_buffers "
        f"{m['postgresql_shared_buffers']}, autovacuum {m['postgresql_autovacuum']}; "
        f"{m['cpus']} CPUs; busy before the start: {m.get('cpu_busy_before_start')}"
    )
    ledger = results.ledger
    print(
        f"Ledger: {ledger['events']:,} events ({s['events']:,} decisions) over {s['days']} days "
        f"from {s['sources']} sources; audit_event {ledger['audit_event_mb']:,} MB with indexes, "
        f"rollup tables {ledger['rollup_tables_mb']:,} MB"
    )
    if results.generation:
        g = results.generation
        print(
            f"Generation: {g['seconds']} s ({g['rows_per_second']:,} events/s, "
            f"{g['workers']} processes, binary COPY); kinds {g['events_by_kind']}; "
            f"triage labels {results.triage_labels}"
        )
        r = results.rollups
        print(
            f"Rollup build: {r['seconds']} s for {r['events_counted']:,} events "
            f"({r['events_per_second']:,}/s), {r['method']}"
        )
        if results.verify:
            v = results.verify
            print(
                f"Verification ({v['scope']}): {v['events']:,} events in {v['seconds']} s, intact"
            )
    rp, raw = results.rollup_path, results.raw_path
    b = results.rollup_breakdown
    print()
    print(f"{'path':<10}{'median ms':>11}{'p95 ms':>9}{'min ms':>9}{'runs':>6}")
    for name, path in (("rollups", rp), ("raw", raw)):
        print(
            f"{name:<10}{path['median_ms']:>11,.1f}{path['p95_ms']:>9,.1f}"
            f"{path['min_ms']:>9,.1f}{path['runs']:>6}"
        )
    print(f"speed-up (raw median / rollup median): {results.speedup:,}x")
    afresh = rp["without_kept_verdicts"]
    print(
        f"rollup path, first call in the process {rp['first_call_ms']} ms; without the verdicts "
        f"a process keeps: median {afresh['median_ms']} ms, p95 {afresh['p95_ms']} ms "
        f"(speed-up {raw['median_ms'] / afresh['median_ms']:,.1f}x)"
    )
    print(
        f"rollup path, Python CPU of this process: median {rp['python_cpu_median_ms']} ms a call; "
        f"load average before/after the timing: {m.get('load_average_before_timing')} / "
        f"{m.get('load_average_after_timing')}"
    )
    print(
        f"rollup path, one call: {b['total_ms']} ms = SQL {b['sql_ms']} ms "
        f"({b['statements']} statements) + Python {b['python_ms']} ms"
    )
    for statement in b["slowest_statements"][:3]:
        print(f"  {statement['ms']:7.1f} ms  {statement['sql'][:110]}")
    print(f"raw path, per run: {raw['parts_ms']}")
    c = results.comparison
    print(
        "\nSame summary from both paths: "
        + ("yes, identical" if c["identical"] else f"NO, first difference {c['first_difference']}")
    )
    for name, figure in c["figures"].items():
        mark = "=" if figure["agree"] else "!="
        print(f"  {name:<30} {figure['rollups']!s:>22} {mark} {figure['raw']!s}")
    for slug, score in c["framework_scores"].items():
        mark = "=" if score["rollups"] == score["raw"] else "!="
        print(f"  score {slug:<24} {score['rollups']!s:>22} {mark} {score['raw']!s}")
    print()
    for bar in results.bars:
        verdict = "PASS" if bar["pass"] else "FAIL"
        print(f"{verdict}  {bar['bar']:<34}{bar['value']!s:>10}   (bar {bar['target']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/posture_slis_bench",
        help="scratch database, dropped and recreated (its name must contain 'bench')",
    )
    parser.add_argument("--events", type=int, default=5_000_000, help="decision events")
    parser.add_argument("--workers", type=int, default=2, help="generating processes")
    parser.add_argument("--runs", type=int, default=7, help="timed rollup-path calls")
    parser.add_argument("--raw-runs", type=int, default=3, help="timed raw-path calls")
    parser.add_argument(
        "--verify",
        choices=("one", "all", "none"),
        default="one",
        help="re-hash one generated chain (default), all of them, or none",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="time an already generated database again"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of one rollup-path call"
    )
    parser.add_argument("--time-limit", type=int, default=3600, help="abort after this many s")
    args = parser.parse_args()
    if args.events < 10_000 or args.workers < 1 or args.runs < 1 or args.raw_runs < 1:
        parser.error("need --events >= 10000 and at least one worker and run")

    def out_of_time(signum, frame):
        raise BenchError(f"time limit of {args.time_limit} s reached")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    signal.alarm(args.time_limit)
    try:
        with tempfile.TemporaryDirectory(prefix="posture-slis-bench-") as tmp:
            results = run(args, Path(tmp))
    except (BenchError, psycopg.Error) as error:
        print(f"\nbenchmark broke: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    print_report(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"slis-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_bytes(orjson.dumps(asdict(results), option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
