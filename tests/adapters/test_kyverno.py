"""POST /api/v1/ingest/kyverno: PolicyReports (v1alpha2) and Policy Reporter's webhook."""

import copy

import pytest

from audit.models import Event
from audit.verify import ledger_verify
from tests.adapters.conftest import fixture, payload, post
from tests.conftest import event_count

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/kyverno"


def reports() -> dict:
    return copy.deepcopy(fixture("kyverno_reports.json"))


def namespaced(document: dict) -> dict:
    return document["items"][0]


def test_a_list_of_reports_becomes_violations_and_decisions(source_client):
    response = post(source_client, URL, reports())

    assert response.status_code == 201, response.content
    violations = {(e.policy, e.rule): e for e in Event.objects.filter(kind="violation")}
    assert set(violations) == {
        ("require-labels", "check-team"),
        ("disallow-privileged", "privileged-containers"),
        ("require-probes", "readiness"),
        ("require-ns-labels", "owner"),
    }
    team = violations["require-labels", "check-team"]
    assert (team.status, team.severity) == ("open", "medium")
    assert team.resource == "Deployment/payments/api"
    assert team.namespace == "payments"
    assert team.reason == "validation error: label team is required"
    # timestamp {seconds, nanos}
    assert team.detected_at.isoformat() == "2026-11-25T10:00:00.250000+00:00"
    # a result without resources is about the report's scope
    assert violations["disallow-privileged", "privileged-containers"].resource == (
        "Deployment/payments/api"
    )
    assert payload(violations["require-probes", "readiness"])["attributes"]["result"] == "warn"
    assert violations["require-ns-labels", "owner"].resource == "Namespace/sandbox"
    decisions = {e.policy: e.outcome for e in Event.objects.filter(kind="decision")}
    assert decisions == {"require-requests": "allow", "restrict-node-port": "skip"}
    assert Event.objects.filter(kind="heartbeat").count() == 2  # one per report observed
    assert ledger_verify().ok


def test_unknown_fields_of_a_result_are_kept(source_client):
    post(source_client, URL, reports())

    skipped = Event.objects.get(policy="restrict-node-port")

    assert payload(skipped)["attributes"]["original"]["x-extra"] == "an unknown result field"


def test_the_same_report_posted_again_stores_nothing(source_client):
    post(source_client, URL, reports())
    stored = event_count()

    again = post(source_client, URL, reports())

    assert again.status_code == 200
    assert event_count() == stored


def test_a_result_gone_from_the_next_report_of_its_scope_is_resolved(source_client):
    post(source_client, URL, reports())
    document = reports()
    report = namespaced(document)
    report["results"] = [r for r in report["results"] if r["policy"] != "require-labels"]
    report["metadata"]["managedFields"] = [{"manager": "kyverno", "time": "2026-11-25T11:00:00Z"}]

    response = post(source_client, URL, document)

    assert response.status_code == 201, response.content
    resolved = Event.objects.get(status="resolved")
    assert (resolved.policy, resolved.rule) == ("require-labels", "check-team")
    assert resolved.resource == "Deployment/payments/api"
    assert resolved.occurred_at.isoformat() == "2026-11-25T11:00:00+00:00"
    opening = Event.objects.get(policy="require-labels", status="open")
    assert payload(resolved)["attributes"]["opened_event_id"] == opening.event_id
    # other scopes and other results are untouched
    assert Event.objects.filter(status="open").count() == 4


def test_an_emptied_report_resolves_everything_in_its_scope(source_client):
    post(source_client, URL, reports())
    document = reports()
    namespaced(document)["results"] = []

    post(source_client, URL, document)

    resolved = {(e.policy, e.rule) for e in Event.objects.filter(status="resolved")}
    assert resolved == {
        ("require-labels", "check-team"),
        ("disallow-privileged", "privileged-containers"),
        ("require-probes", "readiness"),
    }


def test_a_report_whose_newest_result_disappeared_is_not_taken_as_stale(source_client):
    post(source_client, URL, reports())
    document = reports()
    report = namespaced(document)
    # the results left are older than the one that went away
    report["results"] = [r for r in report["results"] if r["timestamp"]["seconds"] == 1795600800]

    post(source_client, URL, document)

    resolved = {e.policy for e in Event.objects.filter(status="resolved")}
    assert resolved == {"require-probes"}


def test_a_violation_that_comes_back_is_opened_again(source_client):
    post(source_client, URL, reports())
    emptied = reports()
    namespaced(emptied)["results"] = []
    post(source_client, URL, emptied)
    back = reports()
    for result in namespaced(back)["results"]:
        result["timestamp"] = {"seconds": 1795604400, "nanos": 0}

    post(source_client, URL, back)

    reopened = Event.objects.filter(policy="require-labels", status="open")
    assert reopened.count() == 2


def test_a_single_report_is_accepted_without_a_list(source_client):
    response = post(source_client, URL, namespaced(reports()))

    assert response.status_code == 201
    assert Event.objects.filter(kind="violation").count() == 3


def test_a_policy_reporter_webhook_result_opens_a_violation(source_client):
    response = post(
        source_client,
        URL,
        fixture("policy_reporter_webhook.json"),
        content_type="application/json; charset=utf-8",
    )

    assert response.status_code == 201, response.content
    violation = Event.objects.get()
    assert (violation.kind, violation.status) == ("violation", "open")
    assert (violation.policy, violation.rule) == ("require-labels", "check-team")
    assert violation.resource == "Pod/payments/api-7f9"
    assert payload(violation)["attributes"]["priority"] == "warning"


def test_policy_reporter_sending_a_result_twice_stores_it_once(source_client):
    post(source_client, URL, fixture("policy_reporter_webhook.json"))

    again = post(source_client, URL, fixture("policy_reporter_webhook.json"))

    assert again.status_code == 200
    assert event_count() == 1


def test_a_policy_reporter_keepalive_is_a_heartbeat(source_client):
    response = post(
        source_client, URL, {"event": "heartbeat", "time": "2026-11-25T10:05:00Z", "cluster": "eu"}
    )

    assert response.status_code == 201
    heartbeat = Event.objects.get()
    assert heartbeat.kind == "heartbeat"
    assert payload(heartbeat)["attributes"]["original"]["cluster"] == "eu"


@pytest.mark.parametrize(
    ("change", "record"),
    [
        (lambda r: r["results"][1].update(result="broken"), "[0].items[0].results[1]"),
        (lambda r: r["results"][0].update(timestamp={"seconds": "x"}), "[0].items[0].results[0]"),
        (lambda r: r["results"][2].pop("policy"), "[0].items[0].results[2]"),
        (lambda r: r.update(results={"not": "a list"}), "[0].items[0]"),
    ],
)
def test_a_malformed_report_is_refused_whole_naming_the_result(source_client, change, record):
    document = reports()
    change(namespaced(document))

    response = post(source_client, URL, document)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_records"
    assert response.json()["events"][0]["record"] == record
    assert event_count() == 0


def test_another_sources_reports_have_their_own_scopes(source_client, other_client):
    post(source_client, URL, reports())
    emptied = reports()
    namespaced(emptied)["results"] = []

    post(other_client, URL, emptied)

    assert not Event.objects.filter(status="resolved").exists()
