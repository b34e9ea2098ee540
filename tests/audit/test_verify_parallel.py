"""verify_audit walks chains in several processes, each with its own connection."""

import io

import pytest
from django.core.management import call_command
from django.db import transaction
from rest_framework.test import APIClient

from audit.services import source_create, source_token_create
from tests.audit.test_tamper_detection import guards_off
from tests.conftest import event, post_events, raw_execute

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_sources(source_client):
    other = source_create(name="kyverno-staging", kind="kyverno", environment="staging")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {source_token_create(source=other)[1]}")
    post_events(source_client, [event(n) for n in range(1, 31)])
    post_events(client, [event(n) for n in range(1, 21)])


def verify(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_audit", "--workers", "2", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def test_parallel_walks_check_every_chain(two_sources):
    code, out = verify()

    assert code == 0, out
    assert "50 events in 3 chains" in out


def test_parallel_walks_find_the_broken_row(two_sources):
    with transaction.atomic(), guards_off():
        raw_execute(
            "UPDATE audit_event SET rule = 'edited' WHERE seq = 12 AND source_id = "
            "(SELECT id FROM audit_source WHERE name = 'kyverno-staging')"
        )

    code, out = verify()

    assert code == 1
    assert "BROKEN source=kyverno-staging seq=12 event_id=evt-12: rule column differs" in out
    assert "opa-prod" not in out
