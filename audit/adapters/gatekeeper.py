"""Gatekeeper constraints, audit log lines and export messages → native events (pure).

Formats: Gatekeeper docs, "Audit" → "Reading Audit Results" ("Constraint Status" and
"Audit Logs"), and "Exporting violations" (the ExportMsg fields of pkg/export/util, plus the
admission fields of violation_admission). docs/adapters.md has the mapping.

Audit results are snapshots; audit.adapters.snapshots turns them into open/resolved history.
Admission violations are decisions and are mapped here directly.
"""

from dataclasses import dataclass, field
from datetime import datetime

from audit.adapters.common import (
    REASON_LIMIT,
    Mapped,
    RecordErrors,
    clip,
    digest,
    keep_original,
    parse_time,
    timestamp_text,
)
from audit.adapters.snapshots import Finding, Observation
from audit.events import SEVERITIES, STRING_LIMITS

CONSTRAINT_GROUP = "constraints.gatekeeper.sh/"
AUDIT_SCOPE = "audit"
AUDIT_STARTED_MESSAGE = "audit is started"
AUDIT_FINISHED_MESSAGE = "audit is completed"
MODES = {"deny": "enforce", "dryrun": "dry_run", "warn": "warn"}
ADMISSION_OUTCOMES = {"deny": "deny", "dryrun": "audit", "warn": "warn"}


@dataclass
class GatekeeperBatch:
    events: list[Mapped] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    ignored: int = 0


@dataclass
class _AuditRun:
    audit_id: str
    started: datetime | None = None
    finished: datetime | None = None
    first_seen: datetime | None = None
    findings: list[Finding] = field(default_factory=list)
    constraints_audited: int = 0
    origin: str = ""


def parse(records: list, *, received_at: datetime) -> GatekeeperBatch:
    """Constraint objects (alone or in a List), audit log lines and export messages."""
    batch, errors, runs = GatekeeperBatch(), RecordErrors(), {}
    for index, record in enumerate(_flatten(records)):
        origin = f"[{index}]"
        if not isinstance(record, dict):
            errors.add(origin, {"record": "must be a JSON object"})
        elif str(record.get("apiVersion", "")).startswith(CONSTRAINT_GROUP):
            _constraint(record, origin, batch, errors)
        elif "event_type" in record:
            _audit_line(record, origin, runs, batch, errors)
        elif "eventType" in record or record.get("message") in _RUN_MESSAGES:
            _export_message(record, origin, runs, batch, errors)
        elif "level" in record and "msg" in record:
            batch.ignored += 1  # another line of the audit pod's log: not an audit event
        else:
            errors.add(origin, {"record": _UNRECOGNISED})
    if errors.errors:
        raise errors
    batch.observations += [_run_observation(run, received_at) for run in runs.values()]
    return batch


_RUN_MESSAGES = (AUDIT_STARTED_MESSAGE, AUDIT_FINISHED_MESSAGE)
_UNRECOGNISED = (
    "not a constraint (apiVersion constraints.gatekeeper.sh/…), an audit log line "
    "(event_type) or an export message (eventType)"
)


def _flatten(records: list) -> list:
    flat = []
    for record in records:
        if isinstance(record, dict) and record.get("kind") == "List" and "items" in record:
            flat += record["items"] if isinstance(record["items"], list) else [record["items"]]
        else:
            flat.append(record)
    return flat


# Constraint status ------------------------------------------------------------------------


def _constraint(record: dict, origin: str, batch: GatekeeperBatch, errors: RecordErrors) -> None:
    kind = record.get("kind")
    name = (record.get("metadata") or {}).get("name")
    status = record.get("status") or {}
    violations = status.get("violations") or []
    if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(violations, list):
        errors.add(origin, {"constraint": "needs kind, metadata.name and a status.violations list"})
        return
    audited = parse_time(status.get("auditTimestamp"))
    if audited is None:
        batch.ignored += 1  # not audited yet: nothing observed
        return
    total = status.get("totalViolations")
    # Gatekeeper lists at most --constraint-violations-limit (20) violations: when some are
    # missing from the list, absence proves nothing, so nothing is resolved from it.
    complete = not isinstance(total, int) or len(violations) >= total
    severity = severity_from(record.get("metadata") or {})
    findings = []
    for position, violation in enumerate(violations):
        if not isinstance(violation, dict):
            errors.add(f"{origin}.status.violations[{position}]", {"violation": "an object"})
            continue
        item = {
            "constraint_kind": kind,
            "constraint_name": name,
            "resource_group": violation.get("group"),
            "resource_kind": violation.get("kind"),
            "resource_namespace": violation.get("namespace"),
            "resource_name": violation.get("name"),
            "message": violation.get("message"),
            "action": violation.get("enforcementAction"),
        }
        findings.append(
            _finding(item, audited, severity, violation, f"{origin}.status.violations[{position}]")
        )
    batch.observations.append(
        Observation(
            engine="gkc",
            scope=f"constraint/{kind}/{name}",
            observed_at=audited,
            findings=findings,
            complete=complete,
            origin=origin,
            occurred_from_previous=True,
            marker_attributes={
                "gatekeeper": {
                    "constraint": f"{kind}/{name}",
                    "audit_timestamp": timestamp_text(audited),
                    "total_violations": total,
                    "listed_violations": len(violations),
                    "truncated": not complete,
                    "enforcement_action": (record.get("spec") or {}).get("enforcementAction"),
                }
            },
        )
    )


def severity_from(metadata: dict) -> str | None:
    """A severity from the constraint's annotations or labels (`severity` or `*/severity`)."""
    for mapping in (metadata.get("annotations"), metadata.get("labels")):
        if not isinstance(mapping, dict):
            continue
        for key, value in mapping.items():
            if (key == "severity" or key.endswith("/severity")) and value in SEVERITIES:
                return value
    return None


def _finding(item: dict, detected_at: datetime, severity, original, origin: str) -> Finding:
    """One violation, from any of the three formats brought to the same `item` fields."""
    key = tuple(item[name] for name in _KEY_FIELDS)
    fields = {
        "policy": clip(item["constraint_kind"], 256),
        "rule": clip(item["constraint_name"], 256),
        "resource": resource_text(item),
        "namespace": clip(item["resource_namespace"], STRING_LIMITS["namespace"]),
        "reason": clip(item["message"], REASON_LIMIT),
        "mode": MODES.get(item["action"]),
    }
    if severity:
        fields["severity"] = severity
    attributes = keep_original(original)
    if not severity:
        attributes["severity_assumed"] = True
    return Finding(
        key=key,
        detected_at=detected_at,
        fields={k: v for k, v in fields.items() if v is not None},
        attributes=attributes,
        origin=origin,
    )


_KEY_FIELDS = (
    "constraint_kind",
    "constraint_name",
    "resource_group",
    "resource_kind",
    "resource_namespace",
    "resource_name",
    "message",
)


def resource_text(item: dict) -> str | None:
    parts = [item.get("resource_kind"), item.get("resource_namespace"), item.get("resource_name")]
    text = "/".join(part for part in parts if isinstance(part, str) and part)
    return clip(text, STRING_LIMITS["resource"])


# Audit runs: log lines and export messages -------------------------------------------------


def _run(runs: dict, audit_id: object, origin: str) -> _AuditRun | None:
    if not isinstance(audit_id, str) or not audit_id:
        return None
    if audit_id not in runs:
        runs[audit_id] = _AuditRun(audit_id=audit_id, origin=origin)
    return runs[audit_id]


def _audit_line(record: dict, origin: str, runs: dict, batch, errors: RecordErrors) -> None:
    run = _run(runs, record.get("audit_id"), origin)
    if run is None:
        errors.add(origin, {"audit_id": "required on every audit log line"})
        return
    logged_at = parse_time(record.get("ts"))
    run.first_seen = run.first_seen or logged_at
    event_type = record["event_type"]
    if event_type == "audit_started":
        run.started = logged_at or parse_time(run.audit_id)
    elif event_type == "audit_finished":
        run.finished = logged_at or parse_time(run.audit_id)
    elif event_type == "constraint_audited":
        run.constraints_audited += 1
    elif event_type == "violation_audited":
        item = {
            "constraint_kind": record.get("constraint_kind"),
            "constraint_name": record.get("constraint_name"),
            "resource_group": record.get("resource_group"),
            "resource_kind": record.get("resource_kind"),
            "resource_namespace": record.get("resource_namespace"),
            "resource_name": record.get("resource_name"),
            "message": record.get("msg"),
            "action": record.get("constraint_action"),
        }
        _add_violation(run, item, logged_at, severity_from(record), record, origin, errors)
    else:
        batch.ignored += 1


def _export_message(record: dict, origin: str, runs: dict, batch, errors) -> None:
    if record.get("eventType") == "violation_admission":
        decision = admission_decision(record, origin, errors)
        if decision is not None:
            batch.events.append(decision)
        return
    run = _run(runs, record.get("id"), origin)
    if run is None:
        errors.add(origin, {"id": "required: the audit run id"})
        return
    if record.get("message") == AUDIT_STARTED_MESSAGE:
        run.started = parse_time(run.audit_id)
    elif record.get("message") == AUDIT_FINISHED_MESSAGE:
        run.finished = parse_time(run.audit_id)  # the message has no time of its own
    elif record.get("eventType") == "violation_audited":
        item = {
            "constraint_kind": record.get("kind"),
            "constraint_name": record.get("name"),
            "resource_group": record.get("resourceGroup"),
            "resource_kind": record.get("resourceKind"),
            "resource_namespace": record.get("resourceNamespace"),
            "resource_name": record.get("resourceName"),
            "message": record.get("message"),
            "action": record.get("enforcementAction"),
        }
        severity = severity_from({"annotations": record.get("constraintAnnotations")})
        _add_violation(run, item, None, severity, record, origin, errors)
    else:
        batch.ignored += 1


def _add_violation(run, item, logged_at, severity, original, origin, errors) -> None:
    if not item["constraint_kind"] or not item["constraint_name"]:
        errors.add(origin, {"constraint": "a violation names its constraint kind and name"})
        return
    detected = logged_at or parse_time(run.audit_id)
    if detected is None:
        errors.add(origin, {"audit_id": "neither the line nor its audit_id gives a time"})
        return
    run.findings.append(_finding(item, detected, severity, original, origin))


def _run_observation(run: _AuditRun, received_at: datetime) -> Observation:
    # audit_id is the run's start time; it orders runs even when lines come in pieces.
    observed = parse_time(run.audit_id) or run.started or run.first_seen or received_at
    phases = tuple(p for p, at in (("s", run.started), ("f", run.finished)) if at) or ("o",)
    return Observation(
        engine="gka",
        scope=AUDIT_SCOPE,
        observed_at=observed,
        findings=run.findings,
        # Only a whole run in one request proves what is absent (docs/adapters.md).
        complete=run.started is not None and run.finished is not None,
        origin=run.origin,
        occurred_from_previous=True,
        phases=phases,
        marker_attributes={
            "gatekeeper": {
                "audit_id": run.audit_id,
                "started_at": timestamp_text(run.started) if run.started else None,
                "finished_at": timestamp_text(run.finished) if run.finished else None,
                "violations_in_request": len(run.findings),
                "constraints_audited": run.constraints_audited,
            }
        },
    )


# Admission ---------------------------------------------------------------------------------


def admission_decision(record: dict, origin: str, errors: RecordErrors) -> Mapped | None:
    """violation_admission: the webhook denied (deny), warned (warn) or only recorded
    (dryrun → outcome audit, mode dry_run) a request."""
    decided = parse_time(record.get("timestamp"))
    kind, name = record.get("kind"), record.get("name")
    if decided is None or not isinstance(kind, str) or not isinstance(name, str):
        errors.add(origin, {"violation_admission": "needs timestamp, kind and name"})
        return None
    action = record.get("enforcementAction")
    item = {
        "resource_kind": record.get("resourceKind"),
        "resource_namespace": record.get("resourceNamespace"),
        "resource_name": record.get("resourceName"),
    }
    identity = (
        timestamp_text(decided),
        kind,
        name,
        resource_text(item),
        record.get("operation"),
        record.get("requestUsername"),
        record.get("requestUserUID"),
        record.get("message"),
    )
    event = {
        "event_id": "gkd" + digest(*identity, length=40),
        "kind": "decision",
        "occurred_at": timestamp_text(decided),
        "policy": clip(kind, 256),
        "rule": clip(name, 256),
        "outcome": ADMISSION_OUTCOMES.get(action, "deny"),
        "mode": MODES.get(action, "enforce"),
        "enforced": action in (None, "deny"),
        "resource": resource_text(item),
        "namespace": clip(item["resource_namespace"], STRING_LIMITS["namespace"]),
        "subject": clip(record.get("requestUsername"), STRING_LIMITS["subject"]),
        "action": clip(record.get("operation"), STRING_LIMITS["action"]),
        "reason": clip(record.get("message"), REASON_LIMIT),
        "attributes": keep_original(record),
    }
    return Mapped({k: v for k, v in event.items() if v is not None}, origin)
