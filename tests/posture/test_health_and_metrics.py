import pytest
from django.db import DatabaseError
from django.test import Client

from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db


def test_healthz_needs_no_login_and_reports_the_database(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "migrations": "applied"}


def test_healthz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    def unreachable(self, targets):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(MigrationExecutor, "migration_plan", unreachable)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"


def test_healthz_is_503_with_unapplied_migrations(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("m", False)])

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["pending_migrations"] == 1


def test_metrics_count_ingest_by_source_and_outcome_and_rejections(source_client, settings):
    settings.POSTURE_METRICS_TOKEN = "scrape-secret-for-tests"
    scraper = Client(HTTP_AUTHORIZATION="Bearer scrape-secret-for-tests")
    before = scraper.get("/metrics").content.decode()

    post_events(source_client, [event(1), event(2)])
    post_events(source_client, [event(2), event(3)])
    post_events(source_client, b"not json")

    after = scraper.get("/metrics").content.decode()

    def value(text: str, line_start: str) -> float:
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    accepted = 'posture_ingest_events_total{outcome="accepted",source="opa-prod"}'
    duplicate = 'posture_ingest_events_total{outcome="duplicate",source="opa-prod"}'
    rejected = 'posture_ingest_rejected_batches_total{reason="bad_json"}'
    assert value(after, accepted) - value(before, accepted) == 3
    assert value(after, duplicate) - value(before, duplicate) == 1
    assert value(after, rejected) - value(before, rejected) == 1
    assert "posture_ingest_request_seconds_bucket" in after


def test_metrics_refuse_a_wrong_token(settings, db):
    settings.POSTURE_METRICS_TOKEN = "scrape-secret-for-tests"

    assert Client(HTTP_AUTHORIZATION="Bearer wrong").get("/metrics").status_code == 401


def test_metrics_show_how_far_the_rollups_trail_the_ledger(source_client, settings):
    from posture.rollups import rollups_apply_all

    settings.POSTURE_METRICS_TOKEN = "scrape-secret-for-tests"
    scraper = Client(HTTP_AUTHORIZATION="Bearer scrape-secret-for-tests")
    # Inside the test's transaction nothing commits, so the rollups are not run: 3 behind.
    post_events(source_client, [event(1), event(2), event(3)])

    behind = scraper.get("/metrics").content.decode()
    rollups_apply_all()
    caught_up = scraper.get("/metrics").content.decode()

    def gauge(text: str, name: str) -> float:
        (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
        return float(line.split()[1])

    assert gauge(behind, "posture_rollup_lag_events") == 3
    assert gauge(behind, "posture_rollup_lag_seconds") > 0
    assert gauge(caught_up, "posture_rollup_lag_events") == 0
    assert gauge(caught_up, "posture_rollup_lag_seconds") == 0
