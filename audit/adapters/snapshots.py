"""Snapshots to history: what changed between two observations of the same scope (pure).

Gatekeeper constraint status, Gatekeeper audit runs and Kyverno policy reports only ever hold
the current state. Each one Posture receives is an observation of a scope (a constraint, the
audit of a cluster, a report). A failing result not open in that scope is stored as an open
violation; a violation open in the scope but absent from a complete observation is stored as
resolved. Still-open violations are not stored again, so the ledger grows with changes, not
with the audit interval, and time-to-resolve is the gap between the open and resolved events.

Event ids carry the scope and the violation, so the state of a scope is read back from the
ledger by an id range (audit.adapters.state) without parsing payloads:

    <engine:3><scope:16>h<observed:20><phase>       heartbeat marking one observation
    <engine:3><scope:16>v<violation:16><o|r><observed:20>   violation opened / resolved
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from audit.adapters.common import Mapped, digest, stamp, timestamp_text

MARKER = "h"
VIOLATION = "v"
OPENED, RESOLVED = "o", "r"
DEFAULT_SEVERITY = "medium"
# Typed fields an open violation hands on to its resolved event.
CARRIED_FIELDS = ("policy", "rule", "severity", "resource", "namespace", "service", "environment")


@dataclass
class Finding:
    """A failing result in one observation: its identity, when the engine found it, fields."""

    key: tuple
    detected_at: datetime
    fields: dict
    attributes: dict
    origin: str

    @property
    def key_hash(self) -> str:
        return digest(*self.key, length=16)


@dataclass
class Observation:
    engine: str  # three lowercase letters: gkc (constraints), gka (audit runs), kyv (reports)
    scope: str
    observed_at: datetime
    findings: list[Finding]
    complete: bool  # all failing results are listed, so absence means resolved
    origin: str
    # Gatekeeper audits on a schedule: a violation first seen now began after the previous
    # audit of its scope, so that is when it began at the latest estimate (time-to-detect
    # is then an upper bound). Kyverno evaluates on admission too: its timestamp is used.
    occurred_from_previous: bool = False
    phases: tuple[str, ...] = ("o",)
    marker_attributes: dict = field(default_factory=dict)
    # A report's clock is its newest result: when the newest result disappears, the report
    # looks older than the last one. Reports arrive in order, so they are taken as of the
    # newest observation instead of being dropped as stale.
    clamp_to_latest: bool = False

    @property
    def prefix(self) -> str:
        return self.engine + digest(self.engine, self.scope, length=16)


@dataclass
class OpenViolation:
    event_id: str
    fields: dict
    detected_at: datetime | None


@dataclass
class ScopeState:
    """What the ledger says about one scope before this request."""

    latest_at: datetime | None = None  # the newest observation stored
    previous_at: datetime | None = None  # the newest one before `latest_at`
    open: dict[str, OpenViolation] = field(default_factory=dict)


def marker_id(prefix: str, observed_at: datetime, phase: str) -> str:
    return f"{prefix}{MARKER}{stamp(observed_at)}{phase}"


def violation_id(prefix: str, key_hash: str, status: str, observed_at: datetime) -> str:
    return f"{prefix}{VIOLATION}{key_hash}{status}{stamp(observed_at)}"


def observation_events(observation: Observation, state: ScopeState) -> list[Mapped]:
    """The events one observation adds, and `state` moved on past it.

    An observation older than the newest one stored is stale (a late retry): it adds nothing.
    """
    if state.latest_at is not None and observation.observed_at < state.latest_at:
        if not observation.clamp_to_latest:
            return []
        observation = dataclasses.replace(observation, observed_at=state.latest_at)
    at = observation.observed_at
    previous = state.latest_at if state.latest_at != at else state.previous_at
    events, seen = [], set()
    for finding in observation.findings:
        key_hash = finding.key_hash
        if key_hash in seen:
            continue
        seen.add(key_hash)
        if key_hash in state.open:
            continue
        event = _opened(observation, finding, key_hash, previous)
        state.open[key_hash] = OpenViolation(
            event["event_id"], _carried(event), finding.detected_at
        )
        events.append(Mapped(event, finding.origin))
    if observation.complete:
        for key_hash in sorted(state.open.keys() - seen):
            closed = state.open.pop(key_hash)
            resolved = _resolved(observation, key_hash, closed, previous)
            events.append(Mapped(resolved, observation.origin))
    opened = sum(1 for m in events if m.event.get("status") == "open")
    summary = {
        "engine": observation.engine,
        "scope": observation.scope,
        "complete": observation.complete,
        "failing": len(seen),
        "opened": opened,
        "resolved": len(events) - opened,
        "open_after": len(state.open),
    }
    markers = [
        Mapped(_marker(observation, phase, summary), observation.origin)
        for phase in observation.phases
    ]
    if state.latest_at is None or at > state.latest_at:
        state.previous_at, state.latest_at = state.latest_at, at
    return markers + events


def _opened(observation: Observation, finding: Finding, key_hash: str, previous) -> dict:
    detected = finding.detected_at
    began, basis = detected, "detected"
    if observation.occurred_from_previous:
        if previous is not None and previous < detected:
            began, basis = previous, "previous_observation"
        else:
            basis = "first_observation"  # it may be older than anything Posture saw
    return {
        "event_id": violation_id(observation.prefix, key_hash, OPENED, observation.observed_at),
        "kind": "violation",
        "status": "open",
        "occurred_at": timestamp_text(began),
        "detected_at": timestamp_text(detected),
        "severity": DEFAULT_SEVERITY,
        **finding.fields,
        "attributes": {
            "violation_id": key_hash,
            "scope": observation.scope,
            "occurred_at_basis": basis,
            **finding.attributes,
        },
    }


def _resolved(observation: Observation, key_hash: str, closed: OpenViolation, previous) -> dict:
    at = timestamp_text(observation.observed_at)
    attributes = {
        "violation_id": key_hash,
        "scope": observation.scope,
        "opened_event_id": closed.event_id,
        # Fixed between the previous observation and this one; this one saw the fix.
        "fixed_after": timestamp_text(previous) if previous else None,
    }
    if closed.detected_at is not None:
        attributes["open_detected_at"] = timestamp_text(closed.detected_at)
    return {
        "event_id": violation_id(observation.prefix, key_hash, RESOLVED, observation.observed_at),
        "kind": "violation",
        "status": "resolved",
        "occurred_at": at,
        "detected_at": at,
        "severity": DEFAULT_SEVERITY,
        **closed.fields,
        "attributes": {k: v for k, v in attributes.items() if v is not None},
    }


def _marker(observation: Observation, phase: str, summary: dict) -> dict:
    return {
        "event_id": marker_id(observation.prefix, observation.observed_at, phase),
        "kind": "heartbeat",
        "occurred_at": timestamp_text(observation.observed_at),
        "attributes": {"observation": summary, **observation.marker_attributes},
    }


def _carried(event: dict) -> dict:
    return {name: event[name] for name in CARRIED_FIELDS if event.get(name) is not None}
