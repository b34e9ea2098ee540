"""The drilldown pages in a real browser: framework → control → rule → its decisions."""

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import chart_drawn, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def no_sideways_scroll(page: Page) -> bool:
    return not page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")


def click_first_bar(page: Page, figure_id: str) -> None:
    """Click the middle of the chart's first bar, where a person would (Plotly listens on the
    plot's drag layer above the bars, so the click goes to the point, not to the element)."""
    bar = page.locator(f"[data-figure='{figure_id}'] .point").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()  # in the viewport, where the mouse is
    assert box, "the chart has no bars"
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_the_auditor_sees_a_framework_and_changes_its_window_without_reload(demo_data, open_as):
    page = open_as("auditor", "/frameworks/pci-dss-4.0")

    assert page.get_by_role("heading", name="PCI DSS", level=1).is_visible()
    assert chart_drawn(page, "chart-framework-score")
    assert page.locator(".control-tree tbody tr").count() > 5
    screenshot(page, "framework")

    page.evaluate("window.notReloaded = true")
    page.get_by_label("Period").select_option("7")
    page.wait_for_url("**/frameworks/pci-dss-4.0?days=7")
    page.locator(".as-of", has_text="Last 7 days").wait_for()
    assert page.evaluate("window.notReloaded") is True  # htmx swapped the body in place
    assert chart_drawn(page, "chart-framework-score")
    # The tree's links keep the window.
    assert page.locator("a[href='/frameworks/pci-dss-4.0/controls/10.2.1?days=7']").count() == 1


def test_the_frameworks_list_leads_to_each_framework(demo_data, open_as):
    page = open_as("executive", "/frameworks")

    assert chart_drawn(page, "chart-framework-score")
    screenshot(page, "frameworks")
    page.get_by_role("link", name="SOC 2 Trust Services Criteria").click()

    page.wait_for_url("**/frameworks/soc2-2017?days=30")


def test_a_click_at_each_step_from_a_framework_to_a_rule_s_decisions(demo_data, open_as):
    page = open_as("auditor", "/frameworks/pci-dss-4.0?days=7")

    page.locator("a[href='/frameworks/pci-dss-4.0/controls/10.2.1?days=7']").click()
    page.wait_for_url("**/frameworks/pci-dss-4.0/controls/10.2.1?days=7")
    assert page.locator(".rule-figures tbody tr").count() >= 1
    screenshot(page, "control")

    page.locator(".rule-figures tbody th a").first.click()
    page.wait_for_url("**/rules/*?days=7")
    assert chart_drawn(page, "chart-rule-decisions")
    assert chart_drawn(page, "chart-rule-latency")
    assert chart_drawn(page, "chart-rule-services")
    screenshot(page, "rule")

    click_first_bar(page, "chart-rule-services")
    page.wait_for_url("**/events?kind=decision&policy=*&rule=*&service=*")
    assert "since=" in page.url and "until=" in page.url
    page.wait_for_load_state("networkidle")
    screenshot(page, "rule-decisions")


def test_the_rule_catalogue_filters_without_reload(demo_data, open_as):
    page = open_as("engineer", "/rules")
    all_rules = page.locator(".rules-table tbody tr").count()

    page.evaluate("window.notReloaded = true")
    page.get_by_label("Severity").select_option("critical")
    page.wait_for_url("**/rules?severity=critical*")
    page.wait_for_function(
        f"document.querySelectorAll('.rules-table tbody tr').length < {all_rules}"
    )
    assert page.evaluate("window.notReloaded") is True
    assert (
        page.locator(".rules-table .badge.critical").count()
        == page.locator(".rules-table tbody tr").count()
    )
    screenshot(page, "rules")

    page.get_by_role("link", name="Uncatalogued: needs an owner").click()
    page.wait_for_url("**/rules?uncatalogued=on")
    assert page.get_by_text("needs an owner").first.is_visible()


def test_the_drilldown_works_from_the_keyboard(demo_data, open_as):
    page = open_as("auditor", "/frameworks/pci-dss-4.0")

    page.evaluate("window.notReloaded = true")
    page.get_by_label("Period").focus()
    page.keyboard.press("ArrowUp")  # a closed select changes on arrow keys: last 7 days
    page.wait_for_url("**/frameworks/pci-dss-4.0?days=7")
    assert page.evaluate("window.notReloaded") is True

    page.locator("a[href='/frameworks/pci-dss-4.0/controls/10.2.1?days=7']").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/controls/10.2.1?days=7")
    page.locator(".rule-figures tbody th a").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/rules/*?days=7")
    # The bars' keyboard twins: links to the same decisions.
    page.locator(".link-row a").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/events?kind=decision&policy=*")


def test_a_rule_is_readable_at_phone_width(demo_data, open_as):
    page = open_as("oncall", "/rules", width=390, height=844)
    page.locator(".rules-table tbody th a", has_text="Require a valid bearer JWT").click()
    page.wait_for_url("**/rules/*")

    assert chart_drawn(page, "chart-rule-decisions")
    assert chart_drawn(page, "chart-rule-outcomes")
    assert no_sideways_scroll(page), "the rule page scrolls sideways at phone width"
    screenshot(page, "rule-phone")

    page.get_by_label("Period").select_option("1")
    page.locator(".as-of", has_text="Last 24 hours").wait_for()
    assert no_sideways_scroll(page)


@pytest.mark.parametrize(
    "path", ["/frameworks", "/frameworks/pci-dss-4.0", "/frameworks/pci-dss-4.0/controls/10.2.1"]
)
def test_the_framework_pages_fit_a_phone(demo_data, open_as, path):
    page = open_as("executive", path, width=390, height=844)

    assert no_sideways_scroll(page), f"{path} scrolls sideways at phone width"
    name = path.strip("/").replace("/", "-").replace(".", "")
    screenshot(page, f"{name}-phone")
