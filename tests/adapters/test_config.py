"""Source.adapter_config: checked when saved, never on the ingest path."""

import pytest
from django.core.exceptions import ValidationError

from audit.adapters.config import adapter_config_problems, opa_rules
from audit.adapters.services import source_adapter_config_set

GOOD = {
    "opa": {
        "decisions": [
            {"path": "envoy/authz/allow", "policy": "envoy.authz", "allow_field": "allowed"},
            {"path": "/kubernetes/*", "deny_field": "deny", "mode": "enforce", "enforced": True},
            {"path": "*", "fields": {"service": "labels.app"}},
        ]
    }
}


def test_a_good_config_has_no_problems():
    assert adapter_config_problems(GOOD) == []
    assert adapter_config_problems({}) == []


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ([], "adapter_config must be a JSON object"),
        ({"gatekeeper": {}}, "unknown key 'gatekeeper'; known: opa"),
        ({"opa": {"decisions": {}}}, "opa.decisions must be a list"),
        ({"opa": {"decisions": [{}]}}, "opa.decisions[0]: path is required"),
        ({"opa": {"decisions": [{"path": "a", "mode": "strict"}]}}, "mode must be one of"),
        ({"opa": {"decisions": [{"path": "a", "enforced": "yes"}]}}, "enforced must be"),
        (
            {"opa": {"decisions": [{"path": "a", "allow_field": "x", "deny_field": "y"}]}},
            "not both",
        ),
        ({"opa": {"decisions": [{"path": "a", "fields": {"kind": "x"}}]}}, "'kind' is not one"),
        ({"opa": {"decisions": [{"path": "a", "policy": ""}]}}, "policy must be a string"),
        ({"opa": {"decisions": [{"path": "a", "colour": "red"}]}}, "unknown key 'colour'"),
    ],
)
def test_problems_are_named(config, problem):
    assert any(problem in text for text in adapter_config_problems(config))


def test_rules_are_tried_most_specific_first():
    rules = opa_rules(GOOD)

    assert [rule.path for rule in rules] == ["envoy/authz/allow", "kubernetes/*", "*"]
    assert rules[1].matches("kubernetes/admission/main")
    assert rules[1].matches("kubernetes")
    assert not rules[1].matches("kubernetesx/main")


@pytest.mark.django_db
def test_the_service_refuses_a_bad_config_and_saves_a_good_one(source):
    with pytest.raises(ValidationError):
        source_adapter_config_set(source=source, config={"opa": {"decisions": [{}]}})

    source_adapter_config_set(source=source, config=GOOD)

    source.refresh_from_db()
    assert source.adapter_config == GOOD


@pytest.mark.django_db
def test_the_model_validates_it_too(source):
    source.adapter_config = {"opa": "nope"}

    with pytest.raises(ValidationError):
        source.full_clean()
