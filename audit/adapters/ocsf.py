"""OCSF Detection Finding (2004) and Compliance Finding (2003) → native events (pure).

Formats: the OCSF schema (schema.ocsf.io, classes detection_finding and compliance_finding,
objects finding_info, compliance, resource_details, metadata) as Prowler writes it with
`-M json-ocsf` (prowler/lib/outputs/ocsf/ocsf.py: a JSON array of Detection Findings, muted
findings with status_id 3 Suppressed). docs/adapters.md has the mapping.
"""

from datetime import datetime

from audit.adapters.common import (
    REASON_LIMIT,
    Mapped,
    RecordErrors,
    clip,
    dig,
    digest,
    keep_original,
    parse_time,
    timestamp_text,
)
from audit.events import STRING_LIMITS

DETECTION_FINDING = 2004
COMPLIANCE_FINDING = 2003
CLASSES = {DETECTION_FINDING: "detection_finding", COMPLIANCE_FINDING: "compliance_finding"}
SEVERITY_IDS = {1: "info", 2: "low", 3: "medium", 4: "high", 5: "critical", 6: "critical"}
STATUS_SUPPRESSED = 3
STATUS_RESOLVED = 4
# Compliance Finding: compliance.status_id 1 Pass, 2 Warning, 3 Fail.
COMPLIANCE_STATUS = {1: "PASS", 2: "WARNING", 3: "FAIL"}


def finding_events(records: list) -> list[Mapped]:
    mapped, errors = [], RecordErrors()
    for index, record in enumerate(records):
        origin = f"[{index}]"
        problems = _problems(record)
        if problems:
            errors.add(origin, problems)
            continue
        mapped.append(Mapped(finding_event(record), origin))
    if errors.errors:
        raise errors
    return mapped


def _problems(record: object) -> dict[str, str]:
    if not isinstance(record, dict):
        return {"record": "must be a JSON object (one OCSF finding)"}
    problems = {}
    if record.get("class_uid") not in CLASSES:
        problems["class_uid"] = "2004 (Detection Finding) or 2003 (Compliance Finding)"
    if not isinstance(dig(record, "finding_info.uid"), str):
        problems["finding_info.uid"] = "required: the finding's stable id"
    if _observed(record) is None:
        problems["time"] = "required: time (epoch) or time_dt (RFC 3339)"
    return problems


def _observed(record: dict) -> datetime | None:
    return parse_time(record.get("time_dt")) or parse_time(record.get("time"))


def status_code(record: dict) -> str:
    """PASS, FAIL, WARNING, MANUAL…: a Compliance Finding's compliance status, else the
    finding's status_code (what Prowler sets)."""
    if record.get("class_uid") == COMPLIANCE_FINDING:
        code = COMPLIANCE_STATUS.get(dig(record, "compliance.status_id"))
        if code:
            return code
        text = dig(record, "compliance.status_code") or dig(record, "compliance.status")
        if isinstance(text, str):
            return text.upper()
    code = record.get("status_code")
    return code.upper() if isinstance(code, str) else "UNKNOWN"


def finding_event(record: dict) -> dict:
    observed = _observed(record)
    began = (
        parse_time(dig(record, "finding_info.first_seen_time_dt"))
        or parse_time(dig(record, "finding_info.first_seen_time"))
        or parse_time(dig(record, "finding_info.created_time_dt"))
        or parse_time(dig(record, "finding_info.created_time"))
        or observed
    )
    code = status_code(record)
    product = dig(record, "metadata.product.name") or dig(record, "metadata.product.uid")
    identity = (product, dig(record, "finding_info.uid"), code, timestamp_text(observed))
    event = {
        "event_id": "ocsf" + digest(*identity, length=40),
        "occurred_at": timestamp_text(min(began, observed)),
        **_names(record, product),
        **_where(record),
        "reason": clip(
            record.get("message")
            or record.get("status_detail")
            or dig(record, "finding_info.title"),
            REASON_LIMIT,
        ),
        "attributes": {
            "ocsf_class": CLASSES[record["class_uid"]],
            "status_code": code,
            **_triage(record),
            **keep_original(record),
        },
    }
    if code in ("FAIL", "WARNING"):
        resolved = record.get("status_id") == STATUS_RESOLVED
        event |= {
            "kind": "violation",
            "status": "resolved" if resolved else "open",
            "detected_at": timestamp_text(observed),
            "severity": SEVERITY_IDS.get(record.get("severity_id"), "medium"),
        }
        if resolved:
            event["occurred_at"] = timestamp_text(observed)
        if record.get("severity_id") not in SEVERITY_IDS:
            event["attributes"]["severity_assumed"] = True
    else:
        event |= {
            "kind": "decision",
            "occurred_at": timestamp_text(observed),
            "outcome": "allow" if code == "PASS" else "skip",  # MANUAL, UNKNOWN: not evaluated
        }
    return {k: v for k, v in event.items() if v is not None}


def _names(record: dict, product: object) -> dict:
    """Compliance Finding: the standard and its control. Detection Finding: the product and
    its check (Prowler's metadata.event_code is the check id)."""
    if record.get("class_uid") == COMPLIANCE_FINDING:
        standards = dig(record, "compliance.standards")
        policy = standards[0] if isinstance(standards, list) and standards else None
        requirements = dig(record, "compliance.requirements")
        rule = dig(record, "compliance.control") or (
            requirements[0] if isinstance(requirements, list) and requirements else None
        )
        if policy and rule:
            return {"policy": clip(policy, 256), "rule": clip(rule, 256)}
    rule = dig(record, "metadata.event_code") or dig(record, "finding_info.title")
    return {"policy": clip(product, 256) or "ocsf", "rule": clip(rule, 256)}


def _where(record: dict) -> dict:
    resources = record.get("resources")
    first = resources[0] if isinstance(resources, list) and resources else {}
    if not isinstance(first, dict):
        first = {}
    return {
        "resource": clip(first.get("uid") or first.get("name"), STRING_LIMITS["resource"]),
        "namespace": clip(first.get("namespace"), STRING_LIMITS["namespace"]),
    }


def _triage(record: dict) -> dict:
    """Suppressed (status_id 3; Prowler: a muted finding) is someone's judgement that the
    finding does not apply: recorded as triaged false positive on the event itself."""
    if record.get("status_id") != STATUS_SUPPRESSED:
        return {}
    return {"triage": {"label": "false_positive", "basis": "ocsf status_id 3 Suppressed"}}
