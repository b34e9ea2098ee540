"""Shipped frameworks and catalogue files (`manage.py load_catalogue`): all or nothing."""

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from posture.catalogue import FRAMEWORKS_DIR
from posture.models import Control, Framework, MappingVersion, Rule, RuleControl

pytestmark = pytest.mark.django_db

DEMO_CATALOGUE = Path(__file__).resolve().parents[2] / "posture" / "data" / "demo-catalogue.yaml"


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def rule(**fields) -> dict:
    return {
        "policy": "k8s-pod-security",
        "rule": "disallow-privileged",
        "title": "Disallow privileged containers",
        "severity": "critical",
        "category": "security",
        "owner_team": "platform-security",
        "enforcement_mode": "enforce",
        "controls": {"pci-dss-4.0": ["2.2.5"], "soc2-2017": ["CC6.1"]},
        **fields,
    }


def test_the_three_frameworks_are_shipped_as_requirement_trees():
    slugs = set(Framework.objects.values_list("slug", flat=True))
    assert slugs == {"pci-dss-4.0", "hipaa-security", "soc2-2017"}
    audit_logs = Control.objects.get(framework__slug="pci-dss-4.0", code="10.2.1.1")
    assert [audit_logs.parent.code, audit_logs.parent.parent.code] == ["10.2.1", "10.2"]
    assert Control.objects.filter(framework__slug="hipaa-security", code="164.312(b)").exists()
    assert Control.objects.get(framework__slug="soc2-2017", code="CC7.2").parent.code == "CC7"
    assert len(list(FRAMEWORKS_DIR.glob("*.yaml"))) == 3


def test_the_demo_catalogue_loads_and_maps_every_rule(capsys):
    call_command("load_catalogue", str(DEMO_CATALOGUE))

    assert "new mapping version 2026.11-demo-1" in capsys.readouterr().out
    assert Rule.objects.filter(catalogued=True).count() >= 30
    version = MappingVersion.objects.get()
    mapped = RuleControl.objects.filter(mapping_version=version)
    assert mapped.values("rule").distinct().count() == Rule.objects.count()
    for slug in ("pci-dss-4.0", "hipaa-security", "soc2-2017"):
        assert mapped.filter(control__framework__slug=slug).exists()


def test_loading_the_same_mapping_again_keeps_its_version(tmp_path, capsys):
    path = write(tmp_path, {"mapping_version": "v1", "rules": [rule()]})
    call_command("load_catalogue", str(path))
    call_command("load_catalogue", str(path))

    assert "mapping unchanged v1" in capsys.readouterr().out
    assert MappingVersion.objects.count() == 1


def test_a_changed_mapping_is_a_new_version_and_the_old_one_is_kept(tmp_path):
    call_command(
        "load_catalogue", str(write(tmp_path, {"mapping_version": "v1", "rules": [rule()]}))
    )
    changed = rule(controls={"pci-dss-4.0": ["2.2.5", "10.2.1"]})
    call_command(
        "load_catalogue", str(write(tmp_path, {"mapping_version": "v2", "rules": [changed]}))
    )

    v1, v2 = MappingVersion.objects.order_by("id")
    assert v1.mappings.count() == 2
    assert sorted(v2.mappings.values_list("control__code", flat=True)) == ["10.2.1", "2.2.5"]


def test_a_changed_mapping_under_a_used_version_is_refused(tmp_path):
    call_command(
        "load_catalogue", str(write(tmp_path, {"mapping_version": "v1", "rules": [rule()]}))
    )
    changed = rule(controls={"pci-dss-4.0": ["10.2.1"]})

    with pytest.raises(CommandError, match="already loaded with a different mapping"):
        call_command(
            "load_catalogue", str(write(tmp_path, {"mapping_version": "v1", "rules": [changed]}))
        )


def test_an_auto_registered_rule_becomes_catalogued(tmp_path):
    Rule.objects.create(policy="k8s-pod-security", name="disallow-privileged", catalogued=False)

    call_command(
        "load_catalogue", str(write(tmp_path, {"mapping_version": "v1", "rules": [rule()]}))
    )

    loaded = Rule.objects.get()
    assert (loaded.catalogued, loaded.severity, loaded.owner_team) == (
        True,
        "critical",
        "platform-security",
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("rules: [unclosed", "while parsing"),
        ({"rules": [rule()]}, "mapping_version: required"),
        ({"mapping_version": "v1"}, "a mapping with a `rules` list"),
        ({"mapping_version": "v1", "rules": [rule(severity="urgent")]}, "severity: one of"),
        ({"mapping_version": "v1", "rules": [rule(controls={"pci-dss-4.0": ["99.9"]})]}, "99.9"),
        ({"mapping_version": "v1", "rules": [rule(), rule()]}, "listed twice"),
        ({"mapping_version": "v1", "rules": [rule(owner="me")]}, "unknown keys: owner"),
        ({"mapping_version": "v1", "rules": [rule(links="https://x")]}, "links: a list"),
        ({"mapping_version": "v1", "rules": [rule(policy="", rule="")]}, "at least one"),
        ({"mapping_version": "v1", "rules": ["just a string"]}, "must be a mapping"),
    ],
)
def test_a_bad_catalogue_is_refused_whole_saying_why(tmp_path, document, problem):
    good = rule(policy="other", rule="first-rule-is-fine")
    if isinstance(document, dict) and "rules" in document:
        document = {**document, "rules": [good, *document["rules"]]}

    with pytest.raises(CommandError, match="nothing was loaded") as refused:
        call_command("load_catalogue", str(write(tmp_path, document)))

    assert problem in str(refused.value)
    assert not Rule.objects.exists()
    assert not MappingVersion.objects.exists()


def test_a_missing_file_is_a_readable_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("load_catalogue", str(tmp_path / "nope.yaml"))
