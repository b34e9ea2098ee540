"""POST /api/v1/ingest/ocsf: Detection and Compliance Findings as Prowler writes them."""

import copy

import pytest

from audit.models import Event
from tests.adapters.conftest import fixture, payload, post
from tests.conftest import event_count

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/ocsf"


def findings() -> list:
    return copy.deepcopy(fixture("ocsf_prowler.json"))


def test_prowler_findings_become_violations_and_decisions(source_client):
    response = post(source_client, URL, findings())

    assert response.status_code == 201, response.content
    failed = Event.objects.get(rule="s3_bucket_default_encryption")
    assert (failed.kind, failed.status, failed.severity) == ("violation", "open", "high")
    assert failed.policy == "Prowler"
    assert failed.resource == "arn:aws:s3:::payments-logs"
    assert failed.detected_at.isoformat() == "2026-11-25T10:00:00+00:00"
    assert failed.reason == "S3 Bucket payments-logs has Server Side Encryption disabled."
    passed = Event.objects.get(rule="iam_password_policy_uppercase")
    assert (passed.kind, passed.outcome) == ("decision", "allow")
    stored = payload(failed)["attributes"]
    assert stored["original"]["unmapped"]["compliance"]["PCI-4.0"] == ["3.5.1"]


def test_a_suppressed_finding_is_a_triaged_false_positive(source_client):
    post(source_client, URL, findings())

    muted = Event.objects.get(rule="ec2_securitygroup_allow_ingress_from_internet_to_port_22")

    assert (muted.kind, muted.severity) == ("violation", "critical")
    assert payload(muted)["attributes"]["triage"]["label"] == "false_positive"


def test_a_compliance_finding_names_its_standard_and_control(source_client):
    post(source_client, URL, findings())

    control = Event.objects.get(policy="PCI-DSS-4.0")

    assert (control.rule, control.kind, control.status) == ("10.2.1", "violation", "open")
    # time in milliseconds, as OCSF defines it
    assert control.detected_at.isoformat() == "2026-11-25T10:00:00+00:00"


def test_the_same_scan_sent_twice_is_stored_once_and_a_new_scan_again(source_client):
    post(source_client, URL, findings())
    again = post(source_client, URL, findings())
    next_scan = findings()
    for finding in next_scan:
        finding["time_dt"] = "2026-11-26T10:00:00Z"

    later = post(source_client, URL, next_scan)

    assert again.status_code == 200
    assert later.json()["accepted"] == 4
    assert event_count() == 8


def test_one_finding_per_line_is_accepted(source_client):
    import orjson

    lines = b"\n".join(orjson.dumps(finding) for finding in findings())

    response = post(source_client, URL, lines, content_type="application/x-ndjson")

    assert response.status_code == 201
    assert event_count() == 4


def test_a_finding_of_another_class_is_refused_whole(source_client):
    document = findings()
    document[2]["class_uid"] = 4001  # Network Activity

    response = post(source_client, URL, document)

    assert response.status_code == 400
    assert response.json()["events"][0]["record"] == "[2]"
    assert "class_uid" in response.json()["events"][0]["errors"]
    assert event_count() == 0
