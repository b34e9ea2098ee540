"""OPA decision logs and status updates → native events (pure, no database).

Formats: OPA docs, "Decision Logs" → "Decision Log Service API" (the event fields table) and
"Masking Sensitive Data"; "Status" → "Status Service API". docs/adapters.md has the mapping.
"""

import re
from datetime import datetime

import orjson

from audit.adapters.common import (
    REASON_LIMIT,
    Mapped,
    RecordErrors,
    clip,
    dig,
    digest,
    keep_original,
    parse_time,
    stamp,
    timestamp_text,
)
from audit.adapters.config import OpaDecisionRule, normalise_path
from audit.events import MAX_EVENT_ID, MAX_INT, STRING_LIMITS, parse_timestamp

_TRACE_ID = re.compile(r"^[0-9a-f]{32}\Z")
# A boolean at a path ending in one of these means "denied" when true (data.x.deny = true).
DENY_LEAVES = frozenset({"deny", "denied", "violation", "violations", "block", "reject"})
ALLOW_KEYS = ("allow", "allowed")
DENY_LIST_KEYS = ("deny", "violations", "violation", "denials", "denied")
REASON_KEYS = ("reasons", "reason", "deny", "violations", "denials", "msg", "message", "errors")
MAX_REASONS = 20
DROP_COUNTER_PREFIX = "counter_decision_logs_dropped"


# Decision logs ------------------------------------------------------------------------------


def decision_events(records: list, *, rules: list[OpaDecisionRule]) -> list[Mapped]:
    """One native decision per OPA decision event; RecordErrors names records it cannot map."""
    mapped, errors = [], RecordErrors()
    for index, record in enumerate(records):
        origin = f"[{index}]"
        problems = _decision_problems(record)
        if problems:
            decision_id = record.get("decision_id") if isinstance(record, dict) else None
            errors.add(origin, problems, decision_id if isinstance(decision_id, str) else None)
            continue
        mapped.append(Mapped(decision_event(record, rules=rules), origin))
    if errors.errors:
        raise errors
    return mapped


def _decision_problems(record: object) -> dict[str, str]:
    if not isinstance(record, dict):
        return {"record": "must be a JSON object (one OPA decision event)"}
    problems = {}
    decision_id = record.get("decision_id")
    if not isinstance(decision_id, str) or not 0 < len(decision_id) <= MAX_EVENT_ID:
        problems["decision_id"] = f"required: a string of 1 to {MAX_EVENT_ID} characters"
    if parse_timestamp(record.get("timestamp")) is None:
        problems["timestamp"] = "required: an RFC 3339 time with an offset"
    return problems


def decision_event(record: dict, *, rules: list[OpaDecisionRule]) -> dict:
    """A native decision event for one (already checked) OPA decision event."""
    raw_path = record.get("path")
    path = normalise_path(raw_path) if isinstance(raw_path, str) else ""
    rule = next((r for r in rules if r.matches(path)), None) if path else None
    policy, rule_name = _names(path, record, rule)
    outcome, reasons = decision_outcome(record, path=path, rule=rule)
    labels = record.get("labels") if isinstance(record.get("labels"), dict) else {}
    event = {
        "event_id": record["decision_id"],
        "kind": "decision",
        "occurred_at": record["timestamp"],
        "policy": policy,
        "rule": rule_name,
        "outcome": outcome,
        "attributes": {"decision_path": raw_path, **keep_original(record)},
    }
    optional = {
        "latency_ms": _latency_ms(record.get("metrics")),
        "policy_version": _policy_version(record.get("bundles")),
        "source_epoch": clip(labels.get("id"), STRING_LIMITS["source_epoch"]),
        "source_seq": _counter(record.get("req_id")),
        "trace_id": _trace_id(record.get("trace_id")),
        "subject": clip(record.get("requested_by"), STRING_LIMITS["subject"]),
        "reason": clip("; ".join(reasons), REASON_LIMIT),
        "mode": rule.mode if rule else None,
        "enforced": rule.enforced if rule else None,
    }
    if rule:
        optional |= _mapped_fields(record, rule.fields)
    event.update((key, value) for key, value in optional.items() if value is not None)
    return event


def _names(path: str, record: dict, rule: OpaDecisionRule | None) -> tuple[str, str]:
    """Default: the package is the policy, the last path segment the rule
    (http/example/authz/allow → http.example.authz, allow)."""
    if path:
        segments = path.split("/")
        policy = ".".join(segments[:-1]) or segments[0]
        rule_name = segments[-1]
    else:  # an ad-hoc query through the Query API has `query` instead of `path`
        policy, rule_name = "opa.query", clip(record.get("query"), 256) or "query"
    if rule:
        policy, rule_name = rule.policy or policy, rule.rule or rule_name
    return policy[:256], rule_name[:256]


def decision_outcome(
    record: dict, *, path: str, rule: OpaDecisionRule | None = None
) -> tuple[str, list[str]]:
    """allow/deny/error and the reasons, from the result (or the rule's fields in it)."""
    if record.get("error"):
        return "error", _reasons(record["error"])
    if "result" not in record:
        return "error", ["undefined decision: OPA returned no result"]
    result = _boolean_text(record["result"])
    if rule and (rule.allow_field or rule.deny_field):
        outcome = _configured_outcome(result, rule)
    else:
        outcome = _default_outcome(result, leaf=path.rsplit("/", 1)[-1])
    reasons = _reasons(dig(result, rule.reasons_field)) if rule and rule.reasons_field else None
    if reasons is None:
        reasons = _result_reasons(result)
    if outcome == "error" and not reasons:
        reasons = ["the result says neither allow nor deny; set a decision mapping"]
    return outcome, reasons


def _boolean_text(value: object) -> object:
    # The OPA docs' own example logs "result": "true" as a string.
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


def _configured_outcome(result: object, rule: OpaDecisionRule) -> str:
    if rule.allow_field:
        allowed = _boolean_text(dig(result, rule.allow_field))
        return (
            {True: "allow", False: "deny"}.get(allowed, "error")
            if isinstance(allowed, bool)
            else "error"
        )
    denied = dig(result, rule.deny_field)
    return "deny" if denied not in (None, False, "", [], {}) else "allow"


def _default_outcome(result: object, *, leaf: str) -> str:
    if isinstance(result, bool):
        return "deny" if result == (leaf in DENY_LEAVES) else "allow"
    if isinstance(result, list):  # a deny/violation set: empty means allowed
        return "deny" if result else "allow"
    if isinstance(result, dict):
        for key in ALLOW_KEYS:
            value = _boolean_text(result.get(key))
            if isinstance(value, bool):
                return "allow" if value else "deny"
        admission = _boolean_text(dig(result, "response.allowed"))  # an AdmissionReview
        if isinstance(admission, bool):
            return "allow" if admission else "deny"
        lists = [result[key] for key in DENY_LIST_KEYS if key in result]
        if lists:
            return "deny" if any(lists) else "allow"
    return "error"


def _result_reasons(result: object) -> list[str]:
    if isinstance(result, list):
        return _reasons(result)
    if not isinstance(result, dict):
        return []
    for key in REASON_KEYS:
        if result.get(key):
            return _reasons(result[key])
    return _reasons(dig(result, "response.status.message"))


def _reasons(value: object) -> list[str]:
    """Reason texts from a string, a list of strings or of {msg|message|reason} objects."""
    if value is None or value is False:
        return []
    items = value if isinstance(value, list) else [value]
    reasons = []
    for item in items[:MAX_REASONS]:
        if isinstance(item, dict):
            text = item.get("msg") or item.get("message") or item.get("reason")
            item = text if isinstance(text, str) else orjson.dumps(item).decode()
        if isinstance(item, str) and item:
            reasons.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            reasons.append(str(item))
    return reasons


def _latency_ms(metrics: object) -> float | None:
    """Decision latency: the whole server handler when OPA reports it, else the query eval."""
    if not isinstance(metrics, dict):
        return None
    for name in ("timer_server_handler_ns", "timer_rego_query_eval_ns"):
        value = metrics.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return value / 1e6
    return None


def _policy_version(bundles: object) -> str | None:
    """The bundle revision; with several bundles, name:revision pairs (or their digest)."""
    if not isinstance(bundles, dict) or not bundles:
        return None
    revisions = {
        name: bundle.get("revision")
        for name, bundle in bundles.items()
        if isinstance(bundle, dict) and isinstance(bundle.get("revision"), str)
    }
    if not revisions:
        return None
    if len(revisions) == 1:
        return clip(next(iter(revisions.values())), STRING_LIMITS["policy_version"])
    joined = ";".join(f"{name}:{revision}" for name, revision in sorted(revisions.items()))
    limit = STRING_LIMITS["policy_version"]
    return joined if len(joined) <= limit else "sha256:" + digest(revisions, length=64)


def _counter(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
        return value
    return None


def _trace_id(value: object) -> str | None:
    return value if isinstance(value, str) and _TRACE_ID.match(value) else None


def _mapped_fields(record: dict, fields: dict[str, str]) -> dict:
    """Native fields read from the decision event by the rule's dotted paths. A masked value
    is read as OPA sent it (e.g. **REDACTED**); an erased one is simply absent."""
    values = {}
    for name, dotted in fields.items():
        value = dig(record, dotted)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        text = clip(value, STRING_LIMITS[name])
        if text is not None:
            values[name] = text
    return values


# Status -----------------------------------------------------------------------------------


def status_events(status: object, *, received_at: datetime) -> list[Mapped]:
    """A heartbeat for the status update, and a policy_deployment per activated bundle."""
    if not isinstance(status, dict) or not isinstance(status.get("labels"), dict):
        problems = {"labels": "a status update is a JSON object with labels (OPA's id, version)"}
        raise RecordErrors([{"record": "body", "event_id": None, "errors": problems}])
    instance = clip(status["labels"].get("id"), STRING_LIMITS["source_epoch"])
    events = [Mapped(_heartbeat(status, instance, received_at), "body")]
    bundles = status.get("bundles") if isinstance(status.get("bundles"), dict) else {}
    for name, bundle in sorted(bundles.items()):
        deployment = _deployment(name, bundle, instance)
        if deployment is not None:
            events.append(Mapped(deployment, f"bundles.{name}"))
    return events


def drop_counters(status: dict) -> dict[str, int]:
    """OPA's counter_decision_logs_dropped_* counters (plain numbers or Prometheus objects)."""
    metrics = dig(status, "metrics.prometheus")
    if not isinstance(metrics, dict):
        return {}
    counters = {}
    for name, value in metrics.items():
        if not name.startswith(DROP_COUNTER_PREFIX):
            continue
        if isinstance(value, dict):
            value = dig(value, "metric.0.counter.value")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            counters[name] = int(value)
    return counters


def _heartbeat(status: dict, instance: str | None, received_at: datetime) -> dict:
    counters = drop_counters(status)
    summary = {
        "instance": instance,
        "plugins": {
            name: plugin.get("state")
            for name, plugin in (status.get("plugins") or {}).items()
            if isinstance(plugin, dict)
        },
        "decision_logs": status.get("decision_logs"),
        "drop_counters": counters,
    }
    # The status carries no time of its own: it is a heartbeat as of its arrival. Retries of
    # one update within the same second share an id; later identical updates are new beats.
    event = {
        "event_id": "opas" + digest(instance, stamp(received_at)[:14], status, length=40),
        "kind": "heartbeat",
        "occurred_at": timestamp_text(received_at),
        "attributes": {"opa_status": summary, **keep_original(status)},
    }
    if instance:
        event["source_epoch"] = instance
    if counters:
        event["dropped_total"] = sum(counters.values())
    return event


def _deployment(name: str, bundle: object, instance: str | None) -> dict | None:
    if not isinstance(bundle, dict):
        return None
    revision = clip(bundle.get("active_revision"), STRING_LIMITS["policy_version"])
    activated = parse_time(bundle.get("last_successful_activation"))
    if revision is None or activated is None or activated.year < 1971:  # Go's zero time
        return None
    activated_text = timestamp_text(activated)
    event = {
        "event_id": "opab" + digest(instance, name, revision, activated_text, length=40),
        "kind": "policy_deployment",
        "occurred_at": activated_text,
        # The status update has no commit time; see docs/adapters.md ("OPA status").
        "committed_at": activated_text,
        "policy": clip(name, 256) or "bundle",
        "policy_version": revision,
        "attributes": {
            "committed_at_known": False,
            "bundle": {k: v for k, v in bundle.items() if k != "metrics"},
        },
    }
    if instance:
        event["source_epoch"] = instance
    return event
