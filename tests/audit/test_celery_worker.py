"""Ledger and rollup tasks through a real Celery worker on Redis (CI sets the broker URL)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from audit.models import Checkpoint, VerificationRun
from audit.tasks import checkpoint_create_task, ledger_verify_task
from posture.celery import app as celery_app
from tests.conftest import event, post_events

REDIS_URL = os.environ.get("POSTURE_TEST_REDIS_URL", "")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not REDIS_URL, reason="set POSTURE_TEST_REDIS_URL to run against a worker"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the worker shares PostgreSQL"),
]


@pytest.fixture
def worker(settings, monkeypatch, tmp_path):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setitem(celery_app.conf, "broker_url", REDIS_URL)
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    celery_app.control.purge()
    database = connection.settings_dict
    env = {
        **os.environ,
        "DEBUG": "true",
        "CELERY_BROKER_URL": REDIS_URL,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "POSTURE_SIGNING_KEY_FILE": settings.POSTURE_SIGNING_KEY_FILE,
        # The worker's mail goes to files here, one per message, for the tests to read.
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "posture",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    process.mail_dir = tmp_path / "mail"
    yield process
    process.terminate()
    process.wait(timeout=30)


def wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_signs_a_checkpoint_and_verifies_the_ledger(worker, source_client):
    post_events(source_client, [event(n) for n in range(1, 21)])

    checkpoint_create_task.delay()
    assert wait_for(lambda: Checkpoint.objects.filter(number=1).exists())

    run = VerificationRun.objects.create(started_at="2026-11-25T00:00:00Z", status="running")
    ledger_verify_task.delay(run.pk)
    assert wait_for(lambda: VerificationRun.objects.get(pk=run.pk).status != "running")
    run.refresh_from_db()
    assert run.status == "passed"
    assert run.result["events_checked"] == 20
    assert run.result["checkpoints_checked"] == 1


def test_a_worker_keeps_its_database_connection_between_tasks(worker, source_client):
    def worker_backends() -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return {pid for (pid,) in cursor.fetchall()}

    post_events(source_client, [event(n) for n in range(1, 6)])
    checkpoint_create_task.delay()
    assert wait_for(lambda: Checkpoint.objects.filter(number=1).exists())
    after_first = worker_backends()
    post_events(source_client, [event(n) for n in range(6, 11)])
    checkpoint_create_task.delay()
    assert wait_for(lambda: Checkpoint.objects.filter(number=2).exists())

    assert after_first
    assert worker_backends() == after_first


def test_a_worker_keeps_the_rollups_current_and_counts_nothing_twice(worker, source, source_client):
    from posture.models import DecisionHourly
    from posture.rollups import rollup_lag
    from posture.tasks import rollups_apply_task

    def decisions_counted() -> int:
        return sum(DecisionHourly.objects.values_list("decisions", flat=True))

    post_events(source_client, [event(n) for n in range(1, 31)])
    post_events(source_client, [event(n) for n in range(31, 41)])

    assert wait_for(lambda: decisions_counted() == 40)
    assert rollup_lag().events_behind == 0
    # Tasks delivered again (acks late) find nothing new to count; the solo worker takes
    # them in order, so once the next batch is counted they have run.
    rollups_apply_task.delay(source.pk)
    rollups_apply_task.delay(source.pk)
    post_events(source_client, [event(n) for n in range(41, 46)])
    assert wait_for(lambda: decisions_counted() == 45)
    time.sleep(0.5)
    assert decisions_counted() == 45


def test_a_worker_expires_an_exception_and_notifies_once(worker, people):
    """Expiry and its notice through the worker (acks late): a notice task delivered again
    sends no second email."""
    from datetime import UTC, datetime, timedelta

    from posture.exceptions import exception_approve, exception_request
    from posture.models import ExceptionState, PolicyException, Rule
    from posture.tasks import exception_notify_task, exceptions_expire_task

    for person in people.values():
        person.email = f"{person.username}@example.com"
        person.save(update_fields=["email"])
    rule = Rule.objects.create(policy="k8s", name="require-labels", severity="high")
    started = datetime.now(UTC) - timedelta(days=2)
    exception = exception_request(
        rule=rule,
        requester=people["engineer"],
        justification="vendor chart",
        duration_days=1,
        at=started,
    )
    exception_approve(exception=exception, approver=people["approver"], at=started)

    def expired_notices() -> int:
        files = worker.mail_dir.glob("*.log") if worker.mail_dir.exists() else []
        return sum(path.read_text().count("has expired") for path in files)

    exceptions_expire_task.delay()
    assert wait_for(lambda: PolicyException.objects.get().state == ExceptionState.EXPIRED)
    assert wait_for(lambda: expired_notices() == 1)
    # The same notice again, as a broker redelivers an unacknowledged task.
    exception_notify_task.delay(exception.pk, "expired")
    exception_notify_task.delay(exception.pk, "expired")
    time.sleep(3)
    assert expired_notices() == 1
