"""The executive dashboard in a real browser."""

import pytest

from tests.browser.conftest import chart_drawn, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_executive_sees_trends_charts_and_changes_the_period_without_reload(demo_data, open_as):
    page = open_as("executive", "/dashboards/executive")

    assert page.get_by_role("heading", name="Compliance and enforcement").is_visible()
    assert chart_drawn(page, "chart-scores")
    assert chart_drawn(page, "chart-m2")
    assert page.locator(".card").count() >= 9
    screenshot(page, "executive")

    page.evaluate("window.notReloaded = true")
    page.get_by_label("Period").select_option("7")
    page.wait_for_url("**/dashboards/executive?days=7")
    page.locator(".as-of", has_text="Last 7 days").wait_for()
    assert page.evaluate("window.notReloaded") is True  # htmx swapped the body in place
    assert chart_drawn(page, "chart-scores")


def test_a_framework_card_leads_to_the_framework(demo_data, open_as):
    page = open_as("auditor", "/dashboards/executive")

    page.locator(".card a", has_text="PCI DSS").click()

    page.wait_for_url("**/frameworks/pci-dss-4.0")


def test_it_is_usable_at_phone_width(demo_data, open_as):
    page = open_as("executive", "/dashboards/executive", width=390, height=844)

    assert chart_drawn(page, "chart-scores")
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    assert not overflow, "the page scrolls sideways at phone width"
    screenshot(page, "executive-phone")
