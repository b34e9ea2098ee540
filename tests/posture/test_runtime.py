"""The long-running processes keep the garbage collector off what they loaded at start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each in a fresh interpreter: what a gunicorn worker and a Celery worker do once loaded.
STARTS = {
    "gunicorn worker": "import posture.wsgi",
    "celery worker, solo pool": (
        "import django; django.setup(); from posture.celery import app; "
        "from celery.signals import worker_ready; worker_ready.send(sender=None)"
    ),
    "celery worker, prefork child": (
        "import django; django.setup(); from posture.celery import app; "
        "from celery.signals import worker_process_init; worker_process_init.send(sender=None)"
    ),
}


@pytest.mark.parametrize("start", STARTS.values(), ids=STARTS.keys())
def test_a_started_process_freezes_what_it_loaded(start):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{start}; import gc; print(gc.get_freeze_count(), gc.get_threshold()[0])",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "posture.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    frozen, young_generation = map(int, result.stdout.split())
    # Django and the apps: tens of thousands of objects.
    assert frozen > 10_000
    assert young_generation == 50_000
