"""Writes of the catalogue: shipped frameworks, and rule catalogues loaded from YAML files.

A catalogue file (docs/catalogue.md has its format) lists rules with their metadata and the
framework controls each maps to. Loading one updates the rules it names and, when the mapping
differs from the current one, records a new mapping version; figures name the version they used.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from posture.models import (
    Category,
    Control,
    EnforcementMode,
    Framework,
    MappingVersion,
    Rule,
    RuleControl,
    Severity,
)

FRAMEWORKS_DIR = Path(__file__).resolve().parent / "data" / "frameworks"
DEMO_CATALOGUE = Path(__file__).resolve().parent / "data" / "demo-catalogue.yaml"
RULE_FIELDS = (
    "title",
    "description",
    "severity",
    "category",
    "owner_team",
    "enforcement_mode",
    "remediation",
    "links",
)
_CHOICES = {
    "severity": Severity.values,
    "category": Category.values,
    "enforcement_mode": EnforcementMode.values,
}


class CatalogueInvalid(Exception):
    """A catalogue file that cannot be loaded; nothing was changed. `problems` say why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class CatalogueLoaded:
    rules_created: int
    rules_updated: int
    mappings: int
    mapping_version: str
    new_version: bool


def frameworks_ensure(folder: Path = FRAMEWORKS_DIR) -> None:
    """Create or update the shipped frameworks and their control trees (after every migrate)."""
    for path in sorted(folder.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        _framework_sync(document["framework"], document["controls"])


@transaction.atomic
def _framework_sync(meta: dict, controls: list[dict]) -> None:
    framework, _ = Framework.objects.update_or_create(
        slug=meta["id"],
        defaults={
            "name": meta["name"],
            "version": str(meta["version"]),
            "publisher": meta.get("publisher", ""),
            "url": meta.get("url", ""),
        },
    )
    existing = {control.code: control for control in framework.controls.all()}
    position = 0

    def walk(nodes: list[dict], parent: Control | None) -> None:
        nonlocal position
        for node in nodes:
            position += 1
            code = str(node["id"])
            values = {
                "title": node["title"],
                "note": node.get("note", ""),
                "parent": parent,
                "position": position,
            }
            control = existing.get(code)
            if control is None:
                control = Control.objects.create(framework=framework, code=code, **values)
            elif any(getattr(control, key) != value for key, value in values.items()):
                for key, value in values.items():
                    setattr(control, key, value)
                control.save()
            walk(node.get("children", []), control)

    walk(controls, None)


def catalogue_load(*, path: Path) -> CatalogueLoaded:
    """Load a catalogue file: all of it, or nothing (CatalogueInvalid lists every problem)."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CatalogueInvalid([f"{path}: {error}"]) from None
    return catalogue_apply(document=document, source=str(path))


@transaction.atomic
def catalogue_apply(*, document: object, source: str = "") -> CatalogueLoaded:
    rules, version = _catalogue_read(document)
    controls = {
        (control.framework.slug, control.code): control
        for control in Control.objects.select_related("framework")
    }
    problems = [
        f"rules[{index}] ({entry['policy']}/{entry['rule']}): no control {code!r} in {slug}"
        for index, entry in enumerate(rules)
        for slug, codes in entry["controls"].items()
        for code in codes
        if (slug, code) not in controls
    ]
    if problems:
        raise CatalogueInvalid(problems)

    created = updated = 0
    mapped: list[tuple[Rule, Control]] = []
    for entry in rules:
        values = {field: entry[field] for field in RULE_FIELDS} | {"catalogued": True}
        rule, was_created = Rule.objects.get_or_create(
            policy=entry["policy"], name=entry["rule"], defaults=values
        )
        if was_created:
            created += 1
        elif any(getattr(rule, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(rule, key, value)
            rule.save()
            updated += 1
        mapped += [
            (rule, controls[(slug, code)])
            for slug, codes in entry["controls"].items()
            for code in codes
        ]
    mapping_version, new_version = _mapping_version_ensure(version, mapped, source)
    return CatalogueLoaded(
        rules_created=created,
        rules_updated=updated,
        mappings=len(mapped),
        mapping_version=mapping_version.version,
        new_version=new_version,
    )


def _mapping_version_ensure(
    version: str, mapped: list[tuple[Rule, Control]], source: str
) -> tuple[MappingVersion, bool]:
    """The mapping as a new version, unless it equals the current one."""
    pairs = sorted(
        {(rule.policy, rule.name, control.framework.slug, control.code) for rule, control in mapped}
    )
    digest = hashlib.sha256(orjson.dumps(pairs)).hexdigest()
    current = MappingVersion.objects.order_by("-id").first()
    if current is not None and current.digest == digest:
        return current, False
    if MappingVersion.objects.filter(version=version).exists():
        raise CatalogueInvalid(
            [f"mapping_version {version!r} is already loaded with a different mapping: "
             "give the changed mapping a new version"]
        )  # fmt: skip
    mapping_version = MappingVersion.objects.create(version=version, source=source, digest=digest)
    RuleControl.objects.bulk_create(
        RuleControl(mapping_version=mapping_version, rule=rule, control=control)
        for rule, control in dict.fromkeys(mapped)
    )
    return mapping_version, True


def _catalogue_read(document: object) -> tuple[list[dict], str]:
    """The rules of a catalogue document, normalised, or CatalogueInvalid with every problem."""
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise CatalogueInvalid(["the file must be a mapping with a `rules` list"])
    version = document.get("mapping_version")
    problems = []
    if not isinstance(version, str | int | float) or not str(version).strip():
        problems.append("mapping_version: required, a short name such as 2026.11-1")
    unknown = document.keys() - {"mapping_version", "rules"}
    if unknown:
        problems.append(f"unknown top-level keys: {', '.join(sorted(map(str, unknown)))}")
    rules, seen = [], set()
    for index, entry in enumerate(document["rules"]):
        rule, rule_problems = _rule_read(entry)
        problems += [f"rules[{index}]: {problem}" for problem in rule_problems]
        if rule is not None:
            key = (rule["policy"], rule["rule"])
            if key in seen:
                problems.append(f"rules[{index}]: {key[0]}/{key[1]} is listed twice")
            seen.add(key)
            rules.append(rule)
    if problems:
        raise CatalogueInvalid(problems)
    return rules, str(version).strip()


def _rule_read(entry: object) -> tuple[dict | None, list[str]]:
    if not isinstance(entry, dict):
        return None, ["must be a mapping"]
    problems = []
    allowed = {"policy", "rule", "controls", *RULE_FIELDS}
    unknown = entry.keys() - allowed
    if unknown:
        problems.append(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    rule = {"policy": entry.get("policy", ""), "rule": entry.get("rule", "")}
    if not all(isinstance(rule[key], str) for key in rule) or not (rule["policy"] or rule["rule"]):
        problems.append("policy and rule: strings, at least one of them not empty")
    for field in RULE_FIELDS:
        value = entry.get(field, [] if field == "links" else "")
        if field == "links":
            if not (isinstance(value, list) and all(isinstance(link, str) for link in value)):
                problems.append("links: a list of URLs")
        elif not isinstance(value, str):
            problems.append(f"{field}: a string")
        elif field in _CHOICES and value and value not in _CHOICES[field]:
            problems.append(f"{field}: one of {', '.join(_CHOICES[field])}")
        rule[field] = value
    controls = entry.get("controls", {})
    if not isinstance(controls, dict) or not all(
        isinstance(codes, list) and all(isinstance(code, str | int | float) for code in codes)
        for codes in controls.values()
    ):
        problems.append("controls: a mapping of framework id to a list of control ids")
        controls = {}
    rule["controls"] = {
        str(slug): [str(code) for code in codes] for slug, codes in controls.items()
    }
    try:
        Rule(policy=rule["policy"], name=rule["rule"], title=rule["title"]).clean_fields(
            exclude=["severity", "category", "enforcement_mode", "links", "description"]
        )
    except ValidationError as error:
        problems += [
            f"{key}: {'; '.join(messages)}" for key, messages in error.message_dict.items()
        ]
    except TypeError:
        pass  # already reported above as a wrong type
    return (None if problems else rule), problems
