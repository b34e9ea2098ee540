"""POST /api/v1/ingest/gatekeeper: constraint status, audit log lines, export messages."""

import copy

import orjson
import pytest

from audit.models import Event
from audit.verify import ledger_verify
from tests.adapters.conftest import fixture, fixture_bytes, payload, post
from tests.conftest import event_count

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/gatekeeper"


def constraints() -> dict:
    return copy.deepcopy(fixture("gatekeeper_constraints.json"))


def audited_at(document: dict, moment: str) -> dict:
    for item in document["items"]:
        item["status"]["auditTimestamp"] = moment
    return document


def opened() -> list[Event]:
    return list(Event.objects.filter(kind="violation", status="open").order_by("seq"))


def test_each_listed_violation_is_opened_once_with_its_constraint_and_resource(source_client):
    response = post(source_client, URL, constraints())

    assert response.status_code == 201, response.content
    violations = opened()
    assert len(violations) == 5
    first = next(v for v in violations if v.rule == "ns-must-have-gk")
    assert first.policy == "K8sRequiredLabels"
    assert first.resource == "Namespace/default"
    assert first.severity == "high"  # from the constraint's severity annotation
    assert first.mode == "enforce"
    assert first.detected_at.isoformat() == "2026-11-25T10:00:00+00:00"
    limits = [v for v in violations if v.rule == "container-must-have-limits"]
    assert {v.mode for v in limits} == {"dry_run"}
    assert {v.severity for v in limits} == {"medium"}
    assert payload(limits[0])["attributes"]["severity_assumed"] is True
    # one heartbeat per observed constraint: audit freshness
    assert Event.objects.filter(kind="heartbeat").count() == 2
    assert ledger_verify().ok


def test_a_retried_snapshot_stores_nothing_new(source_client):
    post(source_client, URL, constraints())

    again = post(source_client, URL, constraints())

    assert again.status_code == 200
    assert again.json()["accepted"] == 0
    assert event_count() == 7


def test_a_still_open_violation_is_not_stored_again_by_the_next_audit(source_client):
    post(source_client, URL, constraints())

    post(source_client, URL, audited_at(constraints(), "2026-11-25T10:01:00Z"))

    assert len(opened()) == 5
    assert Event.objects.filter(kind="heartbeat").count() == 4


def test_a_violation_gone_from_a_complete_list_is_resolved(source_client):
    post(source_client, URL, constraints())
    later = audited_at(constraints(), "2026-11-25T10:05:00Z")
    later["items"][0]["status"]["violations"].pop(1)  # kube-public got its label
    later["items"][0]["status"]["totalViolations"] = 2

    response = post(source_client, URL, later)

    assert response.status_code == 201
    resolved = Event.objects.get(kind="violation", status="resolved")
    assert resolved.resource == "Namespace/kube-public"
    assert (resolved.policy, resolved.rule, resolved.severity) == (
        "K8sRequiredLabels",
        "ns-must-have-gk",
        "high",
    )
    assert resolved.occurred_at.isoformat() == "2026-11-25T10:05:00+00:00"
    attributes = payload(resolved)["attributes"]
    opening = Event.objects.get(resource="Namespace/kube-public", status="open")
    assert attributes["opened_event_id"] == opening.event_id
    assert attributes["violation_id"] == payload(opening)["attributes"]["violation_id"]
    assert attributes["fixed_after"] == "2026-11-25T10:00:00.000000Z"


def test_absence_from_a_truncated_list_resolves_nothing(source_client):
    post(source_client, URL, constraints())
    later = audited_at(constraints(), "2026-11-25T10:05:00Z")
    later["items"][1]["status"]["violations"].pop(0)  # 25 violations, 1 of them listed

    response = post(source_client, URL, later)

    assert response.status_code == 201
    assert not Event.objects.filter(status="resolved").exists()
    markers = [payload(e)["attributes"] for e in Event.objects.filter(kind="heartbeat")]
    limits = [m for m in markers if m["gatekeeper"]["constraint"].endswith("-limits")]
    assert {m["gatekeeper"]["truncated"] for m in limits} == {True}


def test_a_new_violation_began_after_the_previous_audit_of_its_constraint(source_client):
    post(source_client, URL, constraints())
    later = audited_at(constraints(), "2026-11-25T10:01:00Z")
    later["items"][0]["status"]["violations"].append(
        {"enforcementAction": "deny", "kind": "Namespace", "name": "payments", "message": "no"}
    )

    post(source_client, URL, later)

    new = Event.objects.get(resource="Namespace/payments")
    assert new.detected_at.isoformat() == "2026-11-25T10:01:00+00:00"
    assert new.occurred_at.isoformat() == "2026-11-25T10:00:00+00:00"  # time-to-detect ≤ 1 min
    assert payload(new)["attributes"]["occurred_at_basis"] == "previous_observation"
    first = Event.objects.get(resource="Namespace/default")
    assert first.occurred_at == first.detected_at
    assert payload(first)["attributes"]["occurred_at_basis"] == "first_observation"


def test_an_older_snapshot_arriving_late_changes_nothing(source_client):
    post(source_client, URL, audited_at(constraints(), "2026-11-25T10:05:00Z"))
    stale = audited_at(constraints(), "2026-11-25T10:00:00Z")
    stale["items"][0]["status"]["violations"] = []
    stale["items"][0]["status"]["totalViolations"] = 0

    response = post(source_client, URL, stale)

    assert response.status_code == 200
    assert not Event.objects.filter(status="resolved").exists()


def test_a_constraint_not_yet_audited_adds_nothing(source_client):
    document = constraints()
    for item in document["items"]:
        del item["status"]

    response = post(source_client, URL, document)

    assert response.status_code == 200
    assert event_count() == 0


def test_audit_log_lines_of_a_whole_run_open_violations_and_mark_the_run(source_client):
    response = post(
        source_client,
        URL,
        fixture_bytes("gatekeeper_audit.ndjson"),
        content_type="application/x-ndjson",
    )

    assert response.status_code == 201, response.content
    violations = opened()
    assert {v.resource for v in violations} == {
        "Pod/kube-system/kube-scheduler-kind-control-plane",
        "Pod/payments/api-7f9",
    }
    assert violations[0].reason == "container <kube-scheduler> has no resource limits"
    assert violations[0].detected_at.isoformat() == "2026-11-25T10:00:01.200000+00:00"
    markers = [payload(e) for e in Event.objects.filter(kind="heartbeat").order_by("seq")]
    assert [m["event_id"][-1] for m in markers] == ["s", "f"]  # audit started, finished
    assert markers[1]["attributes"]["gatekeeper"]["constraints_audited"] == 1


def test_the_next_complete_run_resolves_what_it_no_longer_finds(source_client):
    lines = fixture_bytes("gatekeeper_audit.ndjson").decode().splitlines()
    post(source_client, URL, "\n".join(lines).encode(), content_type="application/x-ndjson")
    next_run = [
        line.replace("2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z").replace(
            '"ts":17956008', '"ts":17956009'
        )
        for line in lines
        if "kube-scheduler" not in line
    ]

    post(source_client, URL, "\n".join(next_run).encode(), content_type="application/x-ndjson")

    resolved = Event.objects.get(status="resolved")
    assert resolved.resource == "Pod/kube-system/kube-scheduler-kind-control-plane"
    assert resolved.occurred_at.isoformat() == "2026-11-25T10:01:00+00:00"
    assert len(opened()) == 2  # the other one stays open and is not stored again


def test_a_partial_run_opens_but_resolves_nothing(source_client):
    lines = fixture_bytes("gatekeeper_audit.ndjson").decode().splitlines()
    post(source_client, URL, "\n".join(lines).encode(), content_type="application/x-ndjson")
    violations_only = [
        line.replace("2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z")
        for line in lines
        if "violation_audited" in line and "kube-scheduler" not in line
    ]

    body = "\n".join(violations_only).encode()
    post(source_client, URL, body, content_type="application/x-ndjson")

    assert not Event.objects.filter(status="resolved").exists()


def test_export_messages_audit_violations_and_admission_decisions(source_client):
    response = post(source_client, URL, fixture("gatekeeper_export.json"))

    assert response.status_code == 201, response.content
    violation = Event.objects.get(kind="violation")
    assert violation.resource == "Pod/nginx/nginx-deployment-58899467f5-j85bs"
    decisions = {e.rule: e for e in Event.objects.filter(kind="decision")}
    denied = decisions["pod-must-have-test"]
    assert (denied.outcome, denied.mode, denied.enforced) == ("deny", "enforce", True)
    assert (denied.subject, denied.action) == ("kubernetes-admin", "CREATE")
    assert denied.occurred_at.isoformat() == "2026-11-25T10:01:00+00:00"
    dry = decisions["prod-repos"]
    assert (dry.outcome, dry.mode, dry.enforced) == ("audit", "dry_run", False)
    warned = decisions["must-have-probes"]
    assert (warned.outcome, warned.mode) == ("warn", "warn")


def test_admission_messages_sent_twice_are_stored_once(source_client):
    post(source_client, URL, fixture("gatekeeper_export.json"))

    again = post(source_client, URL, fixture("gatekeeper_export.json"))

    assert again.status_code == 200
    assert again.json()["duplicates"] == 4  # 3 decisions and the audit run's marker


def test_unrecognised_records_are_refused_whole(source_client):
    document = [*fixture("gatekeeper_export.json"), {"hello": "world"}]

    response = post(source_client, URL, document)

    assert response.status_code == 400
    assert response.json()["events"][0]["record"] == "[4]"
    assert event_count() == 0


def export_run(audit_id: str, resources: list[str]) -> bytes:
    """One audit run file of the export disk driver: start, violations, completion."""
    messages = [{"id": audit_id, "message": "audit is started"}]
    messages += [
        {
            "id": audit_id,
            "eventType": "violation_audited",
            "kind": "K8sRequiredLabels",
            "name": "pod-must-have-test",
            "message": 'you must provide labels: {"test"}',
            "enforcementAction": "deny",
            "constraintAnnotations": {"severity": "low"},
            "resourceKind": "Pod",
            "resourceNamespace": "nginx",
            "resourceName": name,
        }
        for name in resources
    ]
    messages.append({"id": audit_id, "message": "audit is completed"})
    return b"\n".join(orjson.dumps(message) for message in messages)


def test_export_run_files_open_and_resolve_like_audit_logs(source_client):
    post(
        source_client,
        URL,
        export_run("2026-11-25T10:00:00Z", ["a", "b"]),
        content_type="application/x-ndjson",
    )

    response = post(
        source_client,
        URL,
        export_run("2026-11-25T10:01:00Z", ["b"]),
        content_type="application/x-ndjson",
    )

    assert response.status_code == 201, response.content
    assert {e.resource for e in opened()} == {"Pod/nginx/a", "Pod/nginx/b"}
    assert {e.severity for e in opened()} == {"low"}
    resolved = Event.objects.get(status="resolved")
    assert resolved.resource == "Pod/nginx/a"
    assert resolved.occurred_at.isoformat() == "2026-11-25T10:01:00+00:00"
