"""Kyverno PolicyReports and Policy Reporter webhook payloads → native events (pure).

Formats: wgpolicyk8s.io/v1alpha2 PolicyReport and ClusterPolicyReport (kubernetes-sigs/
wg-policy-prototypes, policy-report/apis/wgpolicyk8s.io/v1alpha2/policyreport_types.go;
Kyverno docs, "Policy Reports"), and Policy Reporter's webhook target (kyverno/policy-reporter,
pkg/target/webhook: one JSON result per request, and {"event": "heartbeat"} keepalives).
docs/adapters.md has the mapping.

A report is a dated observation of its scope: fail and warn results are violations, tracked
open → resolved by audit.adapters.snapshots; pass, error and skip results are decisions.
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

REPORT_GROUP = "wgpolicyk8s.io/"
REPORT_KINDS = ("PolicyReport", "ClusterPolicyReport")
VIOLATING = ("fail", "warn")
DECISION_OUTCOMES = {"pass": "allow", "error": "error", "skip": "skip"}


@dataclass
class KyvernoBatch:
    events: list[Mapped] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)


def parse(records: list, *, received_at: datetime) -> KyvernoBatch:
    """Reports (alone, in an array, or in a `kind: List`) and Policy Reporter payloads."""
    batch, errors = KyvernoBatch(), RecordErrors()
    for index, record in enumerate(records):
        origin = f"[{index}]"
        if isinstance(record, dict) and isinstance(record.get("items"), list):
            for position, item in enumerate(record["items"]):
                _record(item, f"{origin}.items[{position}]", batch, errors, received_at)
        else:
            _record(record, origin, batch, errors, received_at)
    if errors.errors:
        raise errors
    return batch


def _record(record, origin: str, batch: KyvernoBatch, errors: RecordErrors, received_at) -> None:
    if not isinstance(record, dict):
        errors.add(origin, {"record": "must be a JSON object"})
    elif str(record.get("apiVersion", "")).startswith(REPORT_GROUP):
        observation = report_observation(record, origin, errors, received_at=received_at)
        if observation is not None:
            batch.observations.append(observation)
            batch.events += observation_decisions(record, observation, origin)
    elif record.get("event") == "heartbeat":
        heartbeat = webhook_heartbeat(record, origin, errors)
        if heartbeat is not None:
            batch.events.append(heartbeat)
    elif "policy" in record and "status" in record:
        event = webhook_result(record, origin, errors)
        if event is not None:
            batch.events.append(event)
    else:
        errors.add(
            origin,
            {"record": _UNRECOGNISED},
        )


_UNRECOGNISED = (
    "not a PolicyReport or ClusterPolicyReport (apiVersion wgpolicyk8s.io/…), "
    "a List of them, or a Policy Reporter webhook result"
)


# Reports ----------------------------------------------------------------------------------


def report_observation(
    report: dict, origin: str, errors: RecordErrors, *, received_at: datetime
) -> Observation | None:
    kind = report.get("kind")
    metadata = report.get("metadata") or {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    results = report.get("results") or []
    if kind not in REPORT_KINDS or not isinstance(name, str) or not isinstance(results, list):
        errors.add(
            origin,
            {
                "report": "needs kind PolicyReport or ClusterPolicyReport, "
                "metadata.name and a results list"
            },
        )
        return None
    scope = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
    findings = []
    for position, result in enumerate(results):
        where = f"{origin}.results[{position}]"
        if not _result_ok(result, where, errors):
            continue
        if result.get("result") in VIOLATING:
            for resource in _resources(result, report):
                findings.append(_finding(result, resource, where, received_at))
    return Observation(
        engine="kyv",
        scope=scope,
        observed_at=report_time(report, received_at),
        findings=findings,
        complete=True,  # a report holds every current result of its scope
        origin=origin,
        clamp_to_latest=True,
        marker_attributes={
            "kyverno": {
                "report": {
                    "kind": kind,
                    "namespace": namespace,
                    "name": name,
                    "uid": metadata.get("uid"),
                },
                "scope": report.get("scope"),
                "summary": report.get("summary"),
                "results": len(results),
            }
        },
    )


def report_time(report: dict, received_at: datetime) -> datetime:
    """The report's own newest time: its results' timestamps and its metadata's times.

    Without any (an emptied report listed without managedFields), it is observed as of its
    arrival. audit.adapters.snapshots treats a time older than the newest observation as
    that observation's time, so a report never goes stale by its own clock.
    """
    metadata = report.get("metadata") or {}
    candidates = [
        parse_time(r.get("timestamp")) for r in report.get("results") or [] if isinstance(r, dict)
    ]
    candidates += [
        parse_time(entry.get("time"))
        for entry in metadata.get("managedFields") or []
        if isinstance(entry, dict)
    ]
    times = [moment for moment in candidates if moment is not None]
    return max(times) if times else received_at


def _result_ok(result: object, where: str, errors: RecordErrors) -> bool:
    if not isinstance(result, dict):
        errors.add(where, {"result": "must be an object"})
        return False
    problems = {}
    if not isinstance(result.get("policy"), str) or not result["policy"]:
        problems["policy"] = "required: the policy name"
    if result.get("result") not in (*VIOLATING, *DECISION_OUTCOMES):
        problems["result"] = "one of pass, fail, warn, error, skip"
    if "timestamp" in result and parse_time(result["timestamp"]) is None:
        problems["timestamp"] = "{seconds, nanos} or an RFC 3339 time"
    if problems:
        errors.add(where, problems)
    return not problems


def _resources(result: dict, report: dict) -> list[dict | None]:
    """The checked resources; a result without any is about the report's scope."""
    resources = [r for r in result.get("resources") or [] if isinstance(r, dict)]
    if resources:
        return resources
    scope = report.get("scope")
    return [scope if isinstance(scope, dict) else None]


def resource_text(resource: dict | None) -> str | None:
    if not resource:
        return None
    parts = [resource.get("kind"), resource.get("namespace"), resource.get("name")]
    return clip("/".join(p for p in parts if isinstance(p, str) and p), STRING_LIMITS["resource"])


def _resource_identity(resource: dict | None) -> tuple:
    if not resource:
        return ()
    return (resource.get("uid") or None, resource.get("apiVersion"), resource_text(resource))


def _common_fields(result: dict, resource: dict | None) -> dict:
    fields = {
        "policy": clip(result.get("policy"), 256),
        "rule": clip(result.get("rule"), 256),
        "resource": resource_text(resource),
        "namespace": clip((resource or {}).get("namespace"), STRING_LIMITS["namespace"]),
        "reason": clip(result.get("message"), REASON_LIMIT),
    }
    if result.get("severity") in SEVERITIES:
        fields["severity"] = result["severity"]
    return {k: v for k, v in fields.items() if v is not None}


def _result_attributes(result: dict, resource: dict | None) -> dict:
    narrowed = {**result, "resources": [resource]} if resource else result
    attributes = {"result": result.get("result"), **keep_original(narrowed)}
    if result.get("severity") not in SEVERITIES:
        attributes["severity_assumed"] = True
    return attributes


def _finding(result: dict, resource, where: str, received_at: datetime) -> Finding:
    detected = parse_time(result.get("timestamp")) or received_at
    return Finding(
        key=(result.get("policy"), result.get("rule"), *_resource_identity(resource)),
        detected_at=detected,
        fields=_common_fields(result, resource),
        attributes=_result_attributes(result, resource),
        origin=where,
    )


def observation_decisions(report: dict, observation: Observation, origin: str) -> list[Mapped]:
    """pass, error and skip results as decisions, one per checked resource."""
    events = []
    for position, result in enumerate(report.get("results") or []):
        if not isinstance(result, dict) or result.get("result") not in DECISION_OUTCOMES:
            continue
        for resource in _resources(result, report):
            decided = parse_time(result.get("timestamp")) or observation.observed_at
            identity = (
                observation.scope,
                result.get("policy"),
                result.get("rule"),
                *_resource_identity(resource),
                result["result"],
                timestamp_text(decided),
            )
            event = _decision(result, resource, decided, "kyd" + digest(*identity, length=40))
            events.append(Mapped(event, f"{origin}.results[{position}]"))
    return events


def _decision(result: dict, resource, decided: datetime, event_id: str) -> dict:
    attributes = _result_attributes(result, resource)
    attributes.pop("severity_assumed", None)  # decisions need no severity
    return {
        "event_id": event_id,
        "kind": "decision",
        "occurred_at": timestamp_text(decided),
        "outcome": DECISION_OUTCOMES[result["result"]],
        **_common_fields(result, resource),
        "attributes": attributes,
    }


# Policy Reporter webhook --------------------------------------------------------------------


def webhook_result(payload: dict, origin: str, errors: RecordErrors) -> Mapped | None:
    """One result as Policy Reporter's webhook target posts it (status, creationTimestamp).

    Policy Reporter sends new results only, never their disappearance, so results from the
    webhook open violations but nothing resolves them; post reports for that.
    """
    status = payload.get("status")
    created = parse_time(payload.get("creationTimestamp"))
    if status not in (*VIOLATING, *DECISION_OUTCOMES) or created is None:
        errors.add(
            origin,
            {"webhook": "needs status (pass, fail, warn, error, skip) and creationTimestamp"},
        )
        return None
    if not isinstance(payload.get("policy"), str) or not payload["policy"]:
        errors.add(origin, {"policy": "required: the policy name"})
        return None
    result = {**payload, "result": status}
    resource = payload.get("resource") if isinstance(payload.get("resource"), dict) else None
    if resource and not resource.get("name"):
        resource = None
    identity = (
        payload["policy"],
        payload.get("rule"),
        *_resource_identity(resource),
        status,
        timestamp_text(created),
    )
    event_id = "kyw" + digest(*identity, length=40)
    if status in DECISION_OUTCOMES:
        return Mapped(_decision(result, resource, created, event_id), origin)
    event = {
        "event_id": event_id,
        "kind": "violation",
        "status": "open",
        "occurred_at": timestamp_text(created),
        "detected_at": timestamp_text(created),
        "severity": "medium",
        **_common_fields(result, resource),
        "attributes": {
            "via": "policy-reporter webhook",
            "priority": payload.get("priority"),
            **_result_attributes(result, resource),
        },
    }
    return Mapped(event, origin)


def webhook_heartbeat(payload: dict, origin: str, errors: RecordErrors) -> Mapped | None:
    """Policy Reporter's keepalive: {"event": "heartbeat", "time": RFC 3339, …params}."""
    sent = parse_time(payload.get("time"))
    if sent is None:
        errors.add(origin, {"time": "a heartbeat needs time (RFC 3339)"})
        return None
    event = {
        "event_id": "kyh" + digest(timestamp_text(sent), payload, length=40),
        "kind": "heartbeat",
        "occurred_at": timestamp_text(sent),
        "attributes": {"via": "policy-reporter webhook", **keep_original(payload)},
    }
    return Mapped(event, origin)
