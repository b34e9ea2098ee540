"""Exceptions in a real browser: an engineer requests one, an approver approves it, it is active
and published to enforcement points."""

from datetime import UTC, datetime

import orjson
import pytest

from audit.services import ingest_native, source_create
from posture.models import DecisionDaily, ExceptionState, PolicyException, Rule
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_engineer_requests_an_approver_approves_and_it_is_active_and_counted(open_as):
    rule = Rule.objects.create(
        policy="kubernetes.admission", name="require-labels", severity="high", owner_team="platform"
    )

    # Reached from a blocked decision: the form comes prefilled.
    page = open_as(
        "engineer",
        f"/exceptions/new?rule={rule.pk}&environment=prod&service=payments"
        "&resource=deployment/payments-7",
    )
    assert page.get_by_label("Environment").input_value() == "prod"
    assert page.get_by_label("Resource pattern").input_value() == "deployment/payments-7"
    page.get_by_label("Justification").fill("Vendor chart lacks labels; fix tracked in JIRA-1")
    page.get_by_label("Duration (days)").fill("45")
    page.get_by_role("button", name="Request", exact=True).click()
    page.locator("#id_duration_days-error").wait_for()
    assert "between 1 and 30 days" in page.locator("#id_duration_days-error").inner_text()
    page.get_by_label("Duration (days)").fill("14")
    page.get_by_role("button", name="Request", exact=True).click()
    page.wait_for_url("**/exceptions/*")
    assert page.get_by_test_id("exception-state").inner_text() == "requested"
    exception = PolicyException.objects.get()

    approver = open_as("approver", "/exceptions")
    approver.get_by_role("link", name=f"#{exception.pk}").first.click()
    approver.wait_for_url(f"**/exceptions/{exception.pk}")
    approver.get_by_label("Comment").fill("ok until the vendor fix")
    approver.get_by_role("button", name="Approve", exact=True).click()
    approver.wait_for_url(f"**/exceptions/{exception.pk}")
    assert approver.get_by_test_id("exception-state").inner_text() == "approved"
    screenshot(approver, "exception")

    assert PolicyException.objects.get().state == ExceptionState.APPROVED
    overview = open_as("engineer", "/exceptions")
    active = overview.locator("section", has=overview.get_by_role("heading", name="Active"))
    assert active.get_by_role("link", name=f"#{exception.pk}").is_visible()
    screenshot(overview, "exceptions")

    # A decision the waiver covers is counted as excepted, and shown on the rule page.
    source = source_create(name="gatekeeper-prod", kind="gatekeeper", environment="prod")
    covered = {
        "event_id": "covered-1",
        "kind": "decision",
        "occurred_at": datetime.now(UTC).isoformat(),
        "policy": "kubernetes.admission",
        "rule": "require-labels",
        "outcome": "deny",
        "mode": "enforce",
        "enforced": False,
        "service": "payments",
        "resource": "deployment/payments-7",
    }
    ingest_native(
        source=source, body=orjson.dumps([covered]), content_type="application/json",
        content_encoding="",
    )  # fmt: skip
    excepted = DecisionDaily.objects.filter(rule=rule).values_list("excepted", flat=True)
    assert sum(excepted) == 1
    rule_page = open_as("engineer", f"/rules/{rule.pk}")
    row = rule_page.locator("#exceptions-heading + .table-wrap tbody tr").first
    assert row.locator("td.number").inner_text() == "1"
    screenshot(rule_page, "rule-with-exception")
