"""Per-source adapter configuration (Source.adapter_config): its checks and its OPA rules.

The shape (docs/adapters.md, "Decision mapping"):

    {"opa": {"decisions": [
        {"path": "kubernetes/admission/*", "policy": "k8s.admission", "rule": "main",
         "allow_field": "response.allowed", "reasons_field": "response.status.message",
         "mode": "enforce", "enforced": true,
         "fields": {"namespace": "input.request.namespace",
                    "subject": "input.request.userInfo.username"}}]}}

Pure: no database. The checks run when the config is saved (model field validator, admin
form, audit.adapters.services.source_adapter_config_set), never on the ingest path.
"""

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from audit.events import MODES

MAX_DECISION_RULES = 200
RULE_KEYS = {
    "path",
    "policy",
    "rule",
    "allow_field",
    "deny_field",
    "reasons_field",
    "mode",
    "enforced",
    "fields",
}
# Native fields a rule may fill from a dotted path into the OPA decision event.
MAPPABLE_FIELDS = ("namespace", "resource", "subject", "action", "service", "environment")


@dataclass(frozen=True)
class OpaDecisionRule:
    """How decisions at one path (or under a path prefix) become native decisions."""

    path: str
    policy: str | None = None
    rule: str | None = None
    allow_field: str | None = None
    deny_field: str | None = None
    reasons_field: str | None = None
    mode: str | None = None
    enforced: bool | None = None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def is_prefix(self) -> bool:
        return self.path == "*" or self.path.endswith("/*")

    def matches(self, path: str) -> bool:
        if self.path == "*":
            return True
        if self.is_prefix:
            stem = self.path[:-2]
            return path == stem or path.startswith(stem + "/")
        return path == self.path


def normalise_path(path: str) -> str:
    """OPA paths come with or without a leading slash (its docs say receivers must cope)."""
    return path.strip().strip("/")


def adapter_config_problems(config: object) -> list[str]:
    """What is wrong with an adapter config, as sentences; empty when it is usable."""
    if not isinstance(config, dict):
        return ["adapter_config must be a JSON object"]
    problems = [f"unknown key {key!r}; known: opa" for key in config if key != "opa"]
    opa = config.get("opa", {})
    if not isinstance(opa, dict):
        return [*problems, "opa must be an object"]
    problems += [f"opa: unknown key {key!r}; known: decisions" for key in opa if key != "decisions"]
    decisions = opa.get("decisions", [])
    if not isinstance(decisions, list):
        return [*problems, "opa.decisions must be a list"]
    if len(decisions) > MAX_DECISION_RULES:
        problems.append(f"opa.decisions: at most {MAX_DECISION_RULES} rules")
    for index, rule in enumerate(decisions):
        problems += [f"opa.decisions[{index}]: {p}" for p in _rule_problems(rule)]
    return problems


def _rule_problems(rule: object) -> list[str]:
    if not isinstance(rule, dict):
        return ["must be an object"]
    problems = [f"unknown key {key!r}" for key in rule if key not in RULE_KEYS]
    path = rule.get("path")
    if not isinstance(path, str) or not normalise_path(path):
        problems.append("path is required: a decision path, or a prefix ending in /*, or *")
    for key in ("policy", "rule"):
        if key in rule and not _short_text(rule[key], 256):
            problems.append(f"{key} must be a string of 1 to 256 characters")
    for key in ("allow_field", "deny_field", "reasons_field"):
        if key in rule and not _short_text(rule[key], 512):
            problems.append(f"{key} must be a dotted path such as response.allowed")
    if "allow_field" in rule and "deny_field" in rule:
        problems.append("give allow_field or deny_field, not both")
    if "mode" in rule and rule["mode"] not in MODES:
        problems.append(f"mode must be one of {', '.join(MODES)}")
    if "enforced" in rule and not isinstance(rule["enforced"], bool):
        problems.append("enforced must be true or false")
    fields = rule.get("fields", {})
    if not isinstance(fields, dict):
        problems.append("fields must be an object of native field → dotted path")
    else:
        for name, dotted in fields.items():
            if name not in MAPPABLE_FIELDS:
                problems.append(f"fields: {name!r} is not one of {', '.join(MAPPABLE_FIELDS)}")
            elif not _short_text(dotted, 512):
                problems.append(f"fields.{name} must be a dotted path such as input.user")
    return problems


def _short_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def validate_adapter_config(config: object) -> None:
    """Model field validator: raises ValidationError listing every problem."""
    problems = adapter_config_problems(config)
    if problems:
        raise ValidationError(problems)


def opa_rules(config: object) -> list[OpaDecisionRule]:
    """The OPA decision rules of a (valid) config, most specific first: exact paths, then
    longer prefixes, then `*`."""
    if not isinstance(config, dict) or not isinstance(config.get("opa"), dict):
        return []
    rules = []
    for raw in config["opa"].get("decisions", []):
        if not isinstance(raw, dict) or _rule_problems(raw):
            continue  # saved configs are checked; never fail ingest on an old bad one
        path = normalise_path(raw["path"])  # "/*" becomes "*"
        rules.append(OpaDecisionRule(**{**raw, "path": path, "fields": raw.get("fields", {})}))
    return sorted(rules, key=lambda r: (r.is_prefix, r.path == "*", -len(r.path)))
