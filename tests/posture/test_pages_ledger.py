"""The ledger's pages: /events (filters, pages, CSV), /events/<id>, verify and triage."""

import csv
import io

import pytest
from django.test import Client

from audit.models import Event
from posture.models import Rule, TriageState
from posture.pages import ledger
from tests.audit.test_tamper_detection import guards_off
from tests.conftest import event, post_events, raw_execute

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_role(people):
    def client_for(role: str) -> Client:
        client = Client()
        client.force_login(people[role])
        return client

    return client_for


@pytest.fixture
def ledger_rows(source_client) -> list[Event]:
    """Nine decisions of opa-prod (every third a deny), oldest first."""
    post_events(
        source_client,
        [
            event(n, service="payments" if n % 2 else "checkout", subject=f"user-{n}")
            for n in range(1, 10)
        ],
    )
    return list(Event.objects.filter(source__name="opa-prod").order_by("seq"))


def listed(response) -> list[str]:
    """Event ids of the rows on a page, in order."""
    ids = []
    for row in Event.objects.filter(kind="decision"):
        marker = f'href="/events/{row.pk}"'
        if marker in response.content.decode():
            ids.append((response.content.decode().index(marker), row.event_id))
    return [event_id for _, event_id in sorted(ids)]


def test_the_event_list_shows_the_newest_events_first(as_role, ledger_rows):
    response = as_role("executive").get("/events")

    assert response.status_code == 200
    assert listed(response) == [f"evt-{n}" for n in range(9, 0, -1)]
    assert "Download as CSV" in response.content.decode()


def test_an_empty_ledger_says_how_to_connect_a_source(as_role):
    response = as_role("auditor").get("/events")

    assert response.status_code == 200
    body = response.content.decode()
    assert "No events yet: connect a source like this" in body
    assert "python manage.py create_source" in body


def test_filters_narrow_the_list(as_role, ledger_rows):
    client = as_role("engineer")

    assert listed(client.get("/events?outcome=deny")) == ["evt-9", "evt-6", "evt-3"]
    assert listed(client.get("/events?outcome=deny&service=payments")) == ["evt-9", "evt-3"]
    assert listed(client.get("/events?q=payments-7")) == ["evt-7"]
    assert listed(client.get("/events?q=USER-2")) == ["evt-2"]  # the subject, any case
    since = "2026-11-01T00:00:05"
    assert listed(client.get(f"/events?since={since}&until=2026-11-01T00:00:07")) == [
        "evt-6",
        "evt-5",
    ]
    response = client.get("/events?kind=violation")
    assert listed(response) == []
    assert "No events match these filters" in response.content.decode()


def test_severity_filters_decisions_by_their_rule_in_the_catalogue(as_role, ledger_rows):
    Rule.objects.update_or_create(
        policy="kubernetes.admission", name="require-labels", defaults={"severity": "high"}
    )
    client = as_role("engineer")

    assert len(listed(client.get("/events?severity=high"))) == 9
    assert listed(client.get("/events?severity=critical")) == []


def test_the_api_shares_the_page_filters(as_role, ledger_rows):
    response = as_role("engineer").get("/api/v1/events?q=payments-7&outcome=allow")

    assert response.status_code == 200
    assert [row["event_id"] for row in response.json()["results"]] == ["evt-7"]


def test_a_filter_change_through_htmx_returns_only_the_list(as_role, ledger_rows):
    response = as_role("oncall").get("/events?outcome=deny", **HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert listed(response) == ["evt-9", "evt-6", "evt-3"]
    assert 'href="/events.csv?outcome=deny"' in body


def test_the_empty_fields_a_form_sends_are_no_filters(as_role, ledger_rows):
    response = as_role("oncall").get("/events?q=&kind=&severity=&outcome=deny&since=", **HTMX)

    assert listed(response) == ["evt-9", "evt-6", "evt-3"]
    assert response["HX-Push-Url"] == "/events?outcome=deny"


def test_invalid_filters_are_reported_not_ignored(as_role, ledger_rows):
    response = as_role("oncall").get("/events?kind=nonsense&since=yesterday")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Some filters are not valid" in body
    assert "kind" in body and "since" in body
    assert listed(response) == []


def test_pages_go_back_in_time_by_id(as_role, ledger_rows, monkeypatch):
    monkeypatch.setattr(ledger, "PAGE_SIZE", 4)
    client = as_role("auditor")

    first = client.get("/events?kind=decision")
    assert listed(first) == ["evt-9", "evt-8", "evt-7", "evt-6"]
    before = Event.objects.get(event_id="evt-6").pk
    assert f"before={before}" in first.content.decode()

    second = client.get(f"/events?kind=decision&before={before}")
    assert listed(second) == ["evt-5", "evt-4", "evt-3", "evt-2"]
    third = client.get(f"/events?kind=decision&before={Event.objects.get(event_id='evt-2').pk}")
    assert listed(third) == ["evt-1"]
    assert "Older events →" not in third.content.decode()


def test_the_list_makes_a_bounded_number_of_queries(
    as_role, source_client, django_assert_max_num_queries
):
    post_events(source_client, [event(n) for n in range(1, 120)])
    client = as_role("engineer")

    with django_assert_max_num_queries(6):  # session, user, roles, sources, the page
        assert client.get("/events?outcome=deny&q=payments").status_code == 200
    with django_assert_max_num_queries(5):
        assert client.get("/events?outcome=deny", **HTMX).status_code == 200


def test_csv_and_verify_make_a_bounded_number_of_queries(
    as_role, ledger_rows, django_assert_max_num_queries
):
    client = as_role("oncall")

    with django_assert_max_num_queries(4):  # session, user, roles, the rows
        response = client.get("/events.csv?outcome=deny")
        b"".join(response.streaming_content)
    with django_assert_max_num_queries(9):
        assert client.post(f"/events/{ledger_rows[3].pk}/verify", **HTMX).status_code == 200


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_csv_has_a_header_and_the_filtered_rows(as_role, ledger_rows):
    response = as_role("executive").get("/events.csv?outcome=deny")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0] == list(ledger.CSV_COLUMNS)
    event_ids = [row[rows[0].index("event_id")] for row in rows[1:]]
    assert event_ids == ["evt-9", "evt-6", "evt-3"]
    assert {row[rows[0].index("source")] for row in rows[1:]} == {"opa-prod"}


def test_csv_cells_that_look_like_formulas_are_quoted(as_role, source_client):
    post_events(
        source_client,
        [
            event(1, resource='=HYPERLINK("http://evil")', subject="+1", reason="@SUM(A1)"),
            event(2, resource="-2+3", subject="\tcmd", reason="a plain reason"),
        ],
    )

    rows = read_csv(as_role("auditor").get("/events.csv?kind=decision"))

    header = rows[0]
    by_id = {row[header.index("event_id")]: row for row in rows[1:]}
    first, second = by_id["evt-1"], by_id["evt-2"]
    assert first[header.index("resource")] == '\'=HYPERLINK("http://evil")'
    assert first[header.index("subject")] == "'+1"
    assert first[header.index("reason")] == "'@SUM(A1)"
    assert second[header.index("resource")] == "'-2+3"
    assert second[header.index("subject")] == "'\tcmd"
    assert second[header.index("reason")] == "a plain reason"


def test_csv_is_capped(as_role, ledger_rows, monkeypatch):
    monkeypatch.setattr(ledger, "CSV_MAX_ROWS", 3)

    rows = read_csv(as_role("auditor").get("/events.csv"))

    assert len(rows) == 1 + 3


def test_csv_refuses_invalid_filters(as_role, ledger_rows):
    response = as_role("auditor").get("/events.csv?kind=nonsense")

    assert response.status_code == 400
    assert "kind" in response.json()


def test_the_event_page_shows_fields_payload_and_chain_position(as_role, source_client):
    post_events(
        source_client,
        [event(n, attributes={"token": "***MASKED***"}) for n in (1, 2, 3)],
    )
    middle = Event.objects.get(event_id="evt-2")

    response = as_role("approver").get(f"/events/{middle.pk}")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Normalised fields" in body
    assert "deployment/payments-2" in body
    assert middle.hash in body and middle.prev_hash in body
    assert "&quot;token&quot;: &quot;***MASKED***&quot;" in body  # as stored, indented
    assert f'href="/events/{Event.objects.get(event_id="evt-1").pk}"' in body
    assert f'href="/events/{Event.objects.get(event_id="evt-3").pk}"' in body
    # An approver may not verify here, and an allowed decision has no triage.
    assert "Verify this event" not in body
    assert "Triage" not in body


def test_the_event_page_makes_a_bounded_number_of_queries(
    as_role, ledger_rows, django_assert_max_num_queries
):
    deny = Event.objects.get(event_id="evt-3")
    client = as_role("oncall")

    with django_assert_max_num_queries(8):
        assert client.get(f"/events/{deny.pk}").status_code == 200


def test_an_unknown_event_is_404(as_role):
    assert as_role("auditor").get("/events/999999").status_code == 404


def test_verify_says_an_intact_event_is_intact(as_role, ledger_rows):
    target = ledger_rows[4]

    response = as_role("auditor").post(f"/events/{target.pk}/verify", **HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert "verified" in body
    assert "✗ fail" not in body
    assert "<html" not in body


def test_verify_without_htmx_shows_the_event_page_with_the_result(as_role, ledger_rows):
    response = as_role("admin").post(f"/events/{ledger_rows[0].pk}/verify")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body and "This event is intact" in body


def test_verify_names_what_was_tampered_with(as_role, ledger_rows):
    target = ledger_rows[4]
    with guards_off():
        raw_execute("UPDATE audit_event SET service = 'elsewhere' WHERE id = %s", [target.pk])

    response = as_role("oncall").post(f"/events/{target.pk}/verify", **HTMX)

    body = response.content.decode()
    assert "broken" in body
    assert "service column differs from the hashed record" in body


def test_oncall_labels_a_deny_and_sees_the_label(as_role, ledger_rows):
    deny = Event.objects.get(event_id="evt-3")
    before = Event.objects.count()

    response = as_role("oncall").post(
        f"/events/{deny.pk}/triage",
        {"label": "false_positive", "note": "test namespace"},
        **HTMX,
    )

    assert response.status_code == 200
    assert "Labelled <strong>False Positive</strong>" in response.content.decode()
    assert Event.objects.count() == before + 1
    label = Event.objects.latest("id")
    assert label.kind == "triage_label"
    assert label.subject == "oncall"
    assert label.resource == deny.resource


def test_triage_without_htmx_redirects_to_the_event(as_role, ledger_rows):
    deny = Event.objects.get(event_id="evt-6")

    response = as_role("engineer").post(f"/events/{deny.pk}/triage", {"label": "confirmed"})

    assert response.status_code == 302
    assert response["Location"] == f"/events/{deny.pk}"


def test_the_event_page_shows_the_current_label(as_role, ledger_rows):
    deny = Event.objects.get(event_id="evt-6")
    rule = Rule.objects.create(policy="kubernetes.admission", name="require-labels")
    TriageState.objects.create(
        event_id=deny.pk,
        label="confirmed",
        labelled_at=deny.occurred_at,
        labelled_by="engineer",
        note="real problem",
        source_id=deny.source_id,
        rule_id=rule.pk,
        occurred_at=deny.occurred_at,
    )

    body = as_role("executive").get(f"/events/{deny.pk}").content.decode()

    assert "Current label: <strong>Confirmed</strong> by engineer" in body
    assert "real problem" in body
    assert "Save label" not in body  # an executive reads, does not label
    assert f'href="/rules/{rule.pk}"' in body


def test_an_empty_triage_form_is_refused_with_the_error_at_the_field(as_role, ledger_rows):
    deny = Event.objects.get(event_id="evt-3")
    before = Event.objects.count()

    response = as_role("oncall").post(f"/events/{deny.pk}/triage", {"note": "hm"}, **HTMX)

    body = response.content.decode()
    assert response.status_code == 400
    assert 'id="triage-label-error"' in body
    assert "Choose false positive or confirmed." in body
    assert "hm</textarea>" in body  # what was typed is kept
    assert Event.objects.count() == before


def test_triage_of_an_allowed_decision_is_refused_and_writes_nothing(as_role, ledger_rows):
    allowed = Event.objects.get(event_id="evt-1")
    before = Event.objects.count()

    response = as_role("admin").post(f"/events/{allowed.pk}/triage", {"label": "confirmed"})

    assert response.status_code == 400
    assert "only denied decisions are triaged" in response.content.decode()
    assert Event.objects.count() == before


def test_a_note_too_long_is_refused_and_writes_nothing(as_role, ledger_rows):
    deny = Event.objects.get(event_id="evt-3")
    before = Event.objects.count()

    response = as_role("oncall").post(
        f"/events/{deny.pk}/triage", {"label": "confirmed", "note": "x" * 2001}, **HTMX
    )

    assert response.status_code == 400
    assert "at most 2000 characters" in response.content.decode()
    assert Event.objects.count() == before


def test_roles_that_may_not_triage_are_refused_and_nothing_is_written(as_role, ledger_rows):
    deny = Event.objects.get(event_id="evt-3")
    before = Event.objects.count()

    for role in ("executive", "auditor", "approver"):
        response = as_role(role).post(f"/events/{deny.pk}/triage", {"label": "confirmed"})
        assert response.status_code == 403
    assert Event.objects.count() == before
