"""Generated estates for the rollup and SLI property tests.

`estate_generate` is pure: from a seeded random.Random it makes a few sources and, for each,
the native events it emits over three days, numbered as the engine would number them (two
epochs, gaps lost in transit, drops counted by heartbeats) and cut into ingest batches, some
of them retried or delivered late. `estate_ingest` sends the batches through the real ingest
service, with triage labels on some denies along the way, and runs what each commit triggers
(the rollup enqueue) only when asked to.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import orjson
from django.contrib.auth.models import User
from django.db import transaction
from django.test import TestCase

from audit.models import Event, EventKind, Source
from audit.services import ingest_native, source_create
from posture.catalogue import catalogue_apply
from posture.models import (
    DecisionDaily,
    DecisionHourly,
    DeploymentHourly,
    HeartbeatDaily,
    HeartbeatHourly,
    InventoryHourly,
    RemediationHourly,
    RuleDaily,
    SequenceDaily,
    SequenceHourly,
    TriageState,
    ViolationEpisode,
    ViolationHourly,
)
from posture.services import triage_label

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 3
END = T0 + timedelta(days=DAYS)

# (name, kind, environment, heartbeat interval, sends source_seq)
SOURCES = (
    ("gw-prod", "gateway", "prod", 300, True),
    ("k8s-staging", "kyverno", "staging", 45, True),  # a slot of 60 s: intervals under a minute
    ("ci-gate", "ci", "", 420, False),  # no environment; 3600 is not a multiple of its slot
    ("opa-edge", "opa", "prod", 900, True),
)
SOURCE_NAMES = tuple(name for name, *_ in SOURCES)
# (policy, rule); "" leaves the field out of the event.
RULES = (
    ("k8s.security", "disallow-privileged"),
    ("k8s.security", "restrict-host-path"),
    ("k8s.practices", "require-labels"),
    ("k8s.practices", ""),
    ("api.authn", "jwt-required"),
    ("", "standalone-check"),
)
POLICIES = ("k8s.security", "k8s.practices", "api.authn", "")
ENVIRONMENTS = ("prod", "staging")
SERVICES = ("payments", "checkout")
FRAMEWORKS = ("pci-dss-4.0", "soc2-2017", "hipaa-security")
# Controls scopes name: a parent of mapped controls, and a leaf.
CONTROLS = ("pci-dss-4.0:10.2", "pci-dss-4.0:10.2.1.1", "soc2-2017:CC6.1", "hipaa-security:164.312")
CATALOGUE = {
    "mapping_version": "props-1",
    "rules": [
        {
            "policy": "k8s.security",
            "rule": "disallow-privileged",
            "controls": {"pci-dss-4.0": ["10.2.1.1"], "soc2-2017": ["CC6.1"]},
        },
        {
            "policy": "k8s.security",
            "rule": "restrict-host-path",
            "controls": {"pci-dss-4.0": ["10.2.1.2"], "hipaa-security": ["164.312(b)"]},
        },
        # A policy-only rule: what its policy's deployments count against.
        {"policy": "k8s.practices", "rule": "", "controls": {"soc2-2017": ["CC8.1"]}},
        {"policy": "api.authn", "rule": "jwt-required", "controls": {"soc2-2017": ["CC6.1"]}},
    ],
}


@dataclass
class SourcePlan:
    name: str
    kind: str
    environment: str
    interval: int
    numbered: bool
    # Batches in the order they are sent; each a list of native events.
    batches: list[list[dict]] = field(default_factory=list)


@dataclass
class Estate:
    sources: list[SourcePlan]
    # (source name, batch) in sending order across sources.
    sends: list[tuple[str, list[dict]]]
    triage_labels: int


# ---------------------------------------------------------------------------------------------
# Times


def _moment(rng: random.Random, start: datetime = T0 - timedelta(hours=2)) -> datetime:
    """A time in the data span; now and then exactly on an hour, or with microseconds."""
    roll = rng.random()
    if roll < 0.12:
        hours = int((END - start).total_seconds() // 3600)
        return start.replace(minute=0, second=0, microsecond=0) + timedelta(
            hours=rng.randrange(1, hours)
        )
    moment = start + timedelta(seconds=rng.randrange(int((END - start).total_seconds())))
    if roll < 0.3:
        moment += timedelta(microseconds=rng.randrange(1, 10**6))
    return moment


_OFFSETS = (timedelta(0), timedelta(0), timedelta(0), timedelta(hours=2), -timedelta(hours=5.5))


def stamp(moment: datetime, rng: random.Random) -> str:
    """RFC 3339, mostly in UTC ("Z"), sometimes with another offset."""
    offset = rng.choice(_OFFSETS)
    text = moment.astimezone(timezone(offset)).isoformat()
    return text.replace("+00:00", "Z") if offset == timedelta(0) and rng.random() < 0.8 else text


# ---------------------------------------------------------------------------------------------
# Events of one source: (emitted at, event, lost in transit, dropped at source)


def _located(rng: random.Random, event: dict, policy: str, rule: str) -> dict:
    if policy:
        event["policy"] = policy
    if rule:
        event["rule"] = rule
    environment = rng.choice((None, None, *ENVIRONMENTS))
    if environment:
        event["environment"] = environment
    service = rng.choice((None, *SERVICES))
    if service:
        event["service"] = service
    return event


_LATENCIES = (0, 0.5, 1, 7.5, 10, 10.000001, 50, 5000, 5000.5, 12000)


def _decision(rng: random.Random) -> tuple:
    at = _moment(rng)
    policy, rule = rng.choice(RULES)
    event = {
        "kind": "decision",
        "occurred_at": stamp(at, rng),
        "outcome": rng.choice(("allow", "allow", "deny", "deny", "warn", "mutate", "error")),
        "resource": f"deployment/app-{rng.randrange(5)}",
    }
    mode = rng.choice((None, "enforce", "enforce", "dry_run", "warn"))
    if mode:
        event["mode"] = mode
    enforced = rng.choice((None, True, True, False))
    if enforced is not None:
        event["enforced"] = enforced
    roll = rng.random()
    if roll < 0.3:
        event["latency_ms"] = rng.choice(_LATENCIES)
    elif roll < 0.85:
        event["latency_ms"] = round(rng.lognormvariate(1.5, 1.5), rng.choice((0, 3, 6)))
    return at, _located(rng, event, policy, rule)


_DETECT_LAGS = (0, 5, 10, 10.5, 60, 299, 3600, 7200, 90_000, 200_000)


def _violations(rng: random.Random) -> list[tuple]:
    """A violation found, maybe reported again while open, maybe resolved later."""
    began = _moment(rng)
    policy, rule = rng.choice([r for r in RULES if r != ("", "standalone-check")])
    base = _located(
        rng,
        {"kind": "violation", "severity": rng.choice(("critical", "high", "low"))},
        policy,
        rule,
    )
    base["resource"] = f"deployment/app-{rng.randrange(4)}"
    items = []
    roll = rng.random()
    if roll < 0.15:
        detected = None
    elif roll < 0.2:
        detected = began - timedelta(seconds=30)  # the detector's clock is behind
    elif roll < 0.5:
        detected = began + timedelta(seconds=rng.choice(_DETECT_LAGS))
    else:
        detected = began + timedelta(seconds=rng.uniform(0, 20_000))
    event = {**base, "occurred_at": stamp(began, rng)}
    if rng.random() < 0.85:
        event["status"] = "open"
    if detected is not None:
        event["detected_at"] = stamp(detected, rng)
    items.append((detected or began, event))
    seen = detected or began
    if rng.random() < 0.2:  # reported again while still open
        again = seen + timedelta(minutes=rng.randrange(1, 600))
        items.append((again, {**event, "detected_at": stamp(again, rng), "status": "open"}))
    if rng.random() < 0.5:
        fixed = seen + timedelta(seconds=rng.uniform(1, 100_000))
        resolved = {**base, "occurred_at": stamp(fixed, rng), "status": "resolved"}
        found = fixed
        if rng.random() < 0.8:
            found = fixed + timedelta(seconds=rng.uniform(0, 600))
            resolved["detected_at"] = stamp(found, rng)
        items.append((found, resolved))
    return items


def _remediation(rng: random.Random) -> tuple:
    at = _moment(rng)
    policy, rule = rng.choice(RULES)
    event = {
        "kind": "remediation",
        "occurred_at": stamp(at, rng),
        "status": rng.choice(("succeeded", "succeeded", "failed", "skipped")),
        "resource": f"deployment/app-{rng.randrange(4)}",
    }
    return at, _located(rng, event, policy, rule)


_LEADS_MINUTES = (-3, 0, 0.5, 1, 5, 59.99, 60, 2000, 20_000)


def _deployment(rng: random.Random, *, unknown: bool = False) -> tuple:
    at = _moment(rng)
    lead = rng.choice(_LEADS_MINUTES) if rng.random() < 0.4 else rng.uniform(0, 3000)
    event = {
        "kind": "policy_deployment",
        "occurred_at": stamp(at, rng),
        "policy_version": f"v{rng.randrange(100)}",
        "committed_at": stamp(at - timedelta(minutes=lead), rng),
    }
    policy = rng.choice(POLICIES)
    if policy:
        event["policy"] = policy
    environment = rng.choice((None, *ENVIRONMENTS))
    if environment:
        event["environment"] = environment
    if unknown:  # OPA status reports the activation only: the commit time is a stand-in
        event["attributes"] = {"committed_at_known": False}
    return at, event


def _inventory(rng: random.Random) -> list[tuple]:
    at = _moment(rng)
    total = rng.randrange(0, 400)
    event = {
        "kind": "inventory",
        "occurred_at": stamp(at, rng),
        "resources_total": total,
        "resources_covered": rng.randrange(0, total + 1),
    }
    environment = rng.choice((None, *ENVIRONMENTS))
    if environment:
        event["environment"] = environment
    service = rng.choice((None, *SERVICES))
    if service:
        event["service"] = service
    items = [(at, event)]
    if rng.random() < 0.25:  # a second snapshot at the very same time: the later one wins
        items.append((at, {**event, "resources_covered": rng.randrange(0, total + 1)}))
    return items


def _heartbeats(rng: random.Random, interval: int) -> list[tuple]:
    """A beat an interval (with jitter, now and then one missed or repeated), in a few
    stretches of hours with the engine silent in between."""
    items = []
    for _ in range(rng.randint(1, 3)):
        tick = _moment(rng)
        until = tick + timedelta(seconds=interval * rng.randrange(3, 80))
        while tick < min(until, END):
            at = tick + timedelta(milliseconds=rng.randrange(2000))
            if rng.random() < 0.9:
                event = {"kind": "heartbeat", "interval_seconds": interval}
                items.append((at, event))
                if rng.random() < 0.05:
                    items.append((at + timedelta(seconds=1), dict(event)))
            tick += timedelta(seconds=interval)
    return items


def _number(rng: random.Random, plan: SourcePlan, items: list[tuple]) -> list[dict]:
    """Emission order, event ids, and for a numbered source its source_seq per epoch.

    The engine restarts once (a new epoch counts from 1 again); some numbered events are lost
    in transit (a gap), some are dropped at the source (no number; the heartbeats count them).
    """
    items.sort(key=lambda item: item[0])
    restart = _moment(rng) if plan.numbered and rng.random() < 0.8 else END
    events = []
    epoch, seq, emitted, dropped = "", 0, 0, 0
    for number, (at, event) in enumerate(items):
        event = {**event, "event_id": f"{plan.name}-{number}"}
        if "occurred_at" not in event:
            event["occurred_at"] = stamp(at, rng)
        if plan.numbered:
            wanted = f"{plan.name}@{1 if at < restart else 2}"
            if wanted != epoch:
                epoch, seq, emitted, dropped = wanted, 0, 0, 0
            if event["kind"] != "heartbeat" and rng.random() < 0.03:
                dropped += 1
                continue
            seq += 1
            emitted += 1
            if event["kind"] != "heartbeat" and rng.random() < 0.04:
                continue  # lost in transit: a gap in the numbers
            event["source_seq"] = seq
            event["source_epoch"] = epoch
        if event["kind"] == "heartbeat" and rng.random() < 0.9:
            event["emitted_total"] = emitted
            event["dropped_total"] = dropped
        events.append(event)
    return events


def _batches(rng: random.Random, events: list[dict]) -> list[list[dict]]:
    """Cut into batches; some are retried (sent twice), some arrive after the next one."""
    batches = []
    i = 0
    while i < len(events):
        size = rng.randint(1, 60)
        batches.append(events[i : i + size])
        i += size
    for i in range(len(batches) - 1):
        if rng.random() < 0.1:
            batches[i], batches[i + 1] = batches[i + 1], batches[i]
    sent = []
    for batch in batches:
        sent.append(batch)
        if rng.random() < 0.1:
            sent.append(batch[: rng.randint(1, len(batch))])  # a retry of part of it
    return sent


def estate_generate(rng: random.Random, *, size: int = 1) -> Estate:
    """A few sources and what they emit over three days; `size` scales the event counts."""
    chosen = rng.sample(SOURCES, rng.randint(2, len(SOURCES)))
    plans = []
    unknown_lead = True
    for name, kind, environment, interval, numbered in sorted(chosen):
        plan = SourcePlan(name, kind, environment, interval, numbered)
        items = [_decision(rng) for _ in range(rng.randint(5, 40 * size))]
        for _ in range(rng.randint(0, 5 * size)):
            items += _violations(rng)
        items += [_remediation(rng) for _ in range(rng.randint(0, 6 * size))]
        items += [_deployment(rng) for _ in range(rng.randint(0, 3 * size))]
        if unknown_lead:
            items.append(_deployment(rng, unknown=True))
            unknown_lead = False
        for _ in range(rng.randint(0, 4)):
            items += _inventory(rng)
        if rng.random() < 0.9:
            items += _heartbeats(rng, plan.interval)
        plan.batches = _batches(rng, _number(rng, plan, items))
        plans.append(plan)
    queues = {plan.name: list(plan.batches) for plan in plans}
    sends = []
    while queues:
        name = rng.choice(sorted(queues))
        sends.append((name, queues[name].pop(0)))
        if not queues[name]:
            del queues[name]
    return Estate(sources=plans, sends=sends, triage_labels=rng.randint(0, 6))


# ---------------------------------------------------------------------------------------------
# Through the real services


def estate_sources(estate: Estate) -> dict[str, Source]:
    """Create the estate's sources, and load the catalogue that maps some of its rules."""
    catalogue_apply(document=CATALOGUE, source="tests")
    return {
        plan.name: source_create(
            name=plan.name,
            kind=plan.kind,
            environment=plan.environment,
            heartbeat_interval_seconds=plan.interval,
        )
        for plan in estate.sources
    }


def estate_ingest(
    estate: Estate,
    rng: random.Random,
    sources: dict[str, Source],
    *,
    sends: slice = slice(None),
    apply: bool = True,
    labels: bool = True,
) -> None:
    """Send the estate's batches (those of `sends`), labelling some denies along the way.

    With `apply`, what each commit triggers runs (the rollup enqueue, eager Celery), as in
    production; without, the rollups fall behind.
    """
    chosen = estate.sends[sends]
    count = estate.triage_labels if labels and chosen else 0
    labels_at = {rng.randrange(len(chosen)) for _ in range(count)}
    triager = User.objects.filter(username="triager").first() or User.objects.create_user("triager")
    labelled = None
    for i, (name, batch) in enumerate(chosen):
        with TestCase.captureOnCommitCallbacks(execute=apply):
            ingest_native(
                source=sources[name],
                body=orjson.dumps(batch),
                content_type="application/json",
                content_encoding="",
            )
        if i not in labels_at:
            continue
        denies = list(Event.objects.filter(kind=EventKind.DECISION, outcome="deny").order_by("pk"))
        if not denies:
            continue
        # Now and then a decision is labelled again: its latest label is the one that counts.
        if labelled is None or rng.random() < 0.7:
            labelled = rng.choice(denies)
        with TestCase.captureOnCommitCallbacks(execute=apply):
            triage_label(
                event=labelled,
                label=rng.choice(("false_positive", "confirmed")),
                note="checked",
                user=triager,
            )


class _Rollback(Exception):
    pass


def in_savepoint(check) -> None:
    """Run `check` in a savepoint rolled back afterwards. The ledger refuses deletes, so this
    is how each example of a property test starts from an empty ledger."""
    try:
        with transaction.atomic():
            check()
            raise _Rollback
    except _Rollback:
        pass


# ---------------------------------------------------------------------------------------------
# Comparing rollups

ROLLUP_MODELS = (
    DecisionHourly,
    DecisionDaily,
    ViolationHourly,
    ViolationEpisode,
    RemediationHourly,
    DeploymentHourly,
    InventoryHourly,
    HeartbeatHourly,
    SequenceHourly,
    TriageState,
    RuleDaily,
    SequenceDaily,
    HeartbeatDaily,
)


def _plain(value: object) -> object:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def rollups_snapshot() -> dict[str, list[tuple]]:
    """Every row of every rollup table, all columns but the row id, in a stable order."""
    snapshot = {}
    for model in ROLLUP_MODELS:
        names = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        rows = [tuple(map(_plain, row)) for row in model.objects.values_list(*names)]
        snapshot[model.__name__] = sorted(rows, key=repr)
    return snapshot
