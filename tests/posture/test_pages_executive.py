"""The executive dashboard, server side: content, period, empty state, bounded queries."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from posture.templatetags.posture import table_rows
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def executive(people) -> Client:
    client = Client()
    client.force_login(people["executive"])
    return client


def test_an_empty_installation_says_what_to_do(executive):
    response = executive.get("/dashboards/executive")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Compliance and enforcement" in body
    assert "no data" in body
    assert body.count('data-figure="chart-') == 4
    assert "<script>" not in body  # CSP: data only, as application/json


def test_the_period_is_one_of_the_offered_ones(executive):
    assert "last 30 days" in executive.get("/dashboards/executive?days=30").content.decode()
    # Anything else falls back to the default, 90 days.
    page = executive.get("/dashboards/executive?days=12345").content.decode()
    assert "Last 90 days" in page


def test_htmx_gets_only_the_body(executive):
    response = executive.get("/dashboards/executive?days=7", HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert "Last 7 days" in body
    assert "<html" not in body


@pytest.fixture
def nine_decisions_an_hour_ago(source_client, django_capture_on_commit_callbacks) -> datetime:
    """Nine decisions an hour ago, three of them denied (n = 3, 6, 9); when they happened."""
    recent = datetime.now(UTC) - timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        events = [event(n, occurred_at=recent.isoformat()) for n in range(1, 10)]
        post_events(source_client, events)
    return recent


def test_figures_show_their_target_and_formula(executive, nine_decisions_an_hour_ago):
    body = executive.get("/dashboards/executive?days=7").content.decode()

    assert "denies / decisions =" in body
    assert "target ≤ 5.00 %" in body


def test_each_chart_has_its_numbers_as_a_table_row_by_day(executive, nine_decisions_an_hour_ago):
    body = executive.get("/dashboards/executive?days=7").content.decode()

    day = nine_decisions_an_hour_ago.date().isoformat()
    # The deny-rate chart: 3 of the 9 decisions were denied.
    assert f"<tr><td>{day}</td><td>33.33%</td></tr>" in body
    assert body.count("<tbody><tr><td>") == 4  # a table under each chart


def test_chart_table_cells_are_escaped():
    assert table_rows([["<b>", "1 %"], ["a&b", None]]) == (
        "<tr><td>&lt;b&gt;</td><td>1 %</td></tr><tr><td>a&amp;b</td><td>None</td></tr>"
    )


def test_the_page_makes_a_bounded_number_of_queries(executive, django_assert_max_num_queries):
    with django_assert_max_num_queries(40):
        assert executive.get("/dashboards/executive").status_code == 200
