import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from posture.services import personal_token_create
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db


def test_a_person_reads_events_with_a_token_from_the_command(people, source_client):
    post_events(source_client, [event(1)])
    out = io.StringIO()
    call_command("create_api_token", "oncall", stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().splitlines()[-1]}")

    response = client.get("/api/v1/events")

    assert response.status_code == 200
    assert [e["event_id"] for e in response.json()["results"]] == ["evt-1"]


def test_an_expired_personal_token_is_refused(people):
    _, token = personal_token_create(
        user=people["auditor"], expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert client.get("/api/v1/events").status_code == 401


def test_a_personal_token_cannot_write_events(people):
    _, token = personal_token_create(user=people["admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert post_events(client, [event(1)]).status_code == 403


def test_no_token_for_a_person_without_a_role(people):
    with pytest.raises(CommandError, match="no Posture role"):
        call_command("create_api_token", "nobody", stdout=io.StringIO())
