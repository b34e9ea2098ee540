"""The on-call dashboard and the ledger's event pages in a real browser."""

import pytest

from tests.browser.conftest import chart_drawn, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def no_sideways_scroll(page) -> bool:
    return not page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")


def test_the_oncall_dashboard_draws_its_charts_and_refreshes_in_place(demo_data, open_as):
    # The demo data ends some hours before now: 72 hours hold all of its incidents.
    page = open_as("oncall", "/dashboards/oncall?hours=72")

    assert page.get_by_role("heading", name="On-call: now and the last hours").is_visible()
    for chart in ("chart-deny-5m", "chart-deny-hourly", "chart-top-rules", "chart-latency"):
        assert chart_drawn(page, chart)
    assert page.locator(".problem.level-critical").count() >= 1
    screenshot(page, "oncall")

    page.evaluate("window.notReloaded = true")
    page.evaluate("document.querySelector('[data-poll]').dataset.stale = 'yes'")
    with page.expect_response("**/dashboards/oncall/panels?hours=72"):
        page.evaluate("htmx.trigger(document.querySelector('[data-poll]'), 'refresh')")
    page.wait_for_selector("[data-poll]:not([data-stale])")
    assert page.evaluate("window.notReloaded") is True
    assert chart_drawn(page, "chart-top-rules")

    page.get_by_label("Window").select_option("24")
    page.wait_for_url("**/dashboards/oncall?hours=24")
    page.locator(".as-of", has_text="last 24 hours").wait_for()
    assert page.evaluate("window.notReloaded") is True


def test_the_oncall_dashboard_works_at_phone_width(demo_data, open_as):
    page = open_as("engineer", "/dashboards/oncall?hours=72", width=390, height=844)

    assert chart_drawn(page, "chart-top-rules")
    assert no_sideways_scroll(page), "the page scrolls sideways at phone width"
    screenshot(page, "oncall-phone")


def test_a_filter_change_updates_the_event_list_without_reload(demo_data, open_as):
    page = open_as("auditor", "/events")
    assert page.locator("table.events tbody tr").count() == 50
    screenshot(page, "events")

    page.evaluate("window.notReloaded = true")
    page.get_by_label("Outcome").select_option("deny")
    page.wait_for_url("**/events?*outcome=deny*")
    page.locator("table.events tbody tr").first.wait_for()
    outcomes = page.locator("table.events tbody td .outcome").all_inner_texts()
    assert outcomes and set(outcomes) == {"deny"}
    assert page.evaluate("window.notReloaded") is True

    page.locator("a[rel=next]").click()
    page.wait_for_url("**/events?*before=*")
    assert page.evaluate("window.notReloaded") is True


def test_an_auditor_opens_an_event_and_verifies_it(demo_data, open_as):
    page = open_as("auditor", "/events?kind=decision")

    page.locator("table.events tbody th a").first.click()
    page.wait_for_url("**/events/*")
    assert page.get_by_role("heading", name="Chain position").is_visible()

    page.get_by_role("button", name="Verify this event").click()
    page.locator(".proof").wait_for()
    assert "verified" in page.locator(".proof-verdict").inner_text().lower()
    assert page.locator(".check.state-bad").count() == 0
    screenshot(page, "event")


def test_oncall_triages_a_deny(demo_data, open_as, live_server):
    page = open_as("oncall", "/events")
    page.goto(f"{live_server.url}/events?kind=decision&outcome=deny")
    page.locator("table.events tbody th a").first.click()
    page.wait_for_url("**/events/*")
    assert page.locator("h1 .outcome").inner_text() == "deny"

    page.get_by_label("False Positive").check()
    page.get_by_label("Note").fill("a test namespace, not production")
    page.get_by_role("button", name="Save label").click()

    page.locator(".triage-current", has_text="Labelled").wait_for()
    assert "False Positive" in page.locator(".triage-current").inner_text()
    screenshot(page, "event-triaged")


def test_the_event_pages_work_at_phone_width(demo_data, open_as, live_server):
    page = open_as("oncall", "/events", width=390, height=844)
    page.goto(f"{live_server.url}/events?kind=decision&outcome=deny")
    assert no_sideways_scroll(page), "the event list scrolls sideways at phone width"
    screenshot(page, "events-phone")

    page.locator("table.events tbody th a").first.click()
    page.wait_for_url("**/events/*")
    assert no_sideways_scroll(page), "the event page scrolls sideways at phone width"
    screenshot(page, "event-phone")
