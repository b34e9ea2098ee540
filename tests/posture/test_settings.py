"""Production settings refuse to start without secrets, and pass Django's deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "SECRET_KEY", "POSTURE_SIGNING_KEY", "POSTURE_SIGNING_KEY_FILE")
        # The browser tests set it for this process only; a deployment must never have it.
        and key != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DEBUG="false")

    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_production_refuses_to_start_without_a_signing_key():
    result = run_manage(
        "check", DEBUG="false", SECRET_KEY="x" * 60, POSTURE_SIGNING_KEY_FILE="/nonexistent/key.pem"
    )

    assert result.returncode != 0
    assert "POSTURE_SIGNING_KEY" in result.stderr


def test_a_bad_boolean_is_a_readable_error():
    result = run_manage("check", DEBUG="maybe")

    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


def test_deploy_checks_pass_with_production_settings(tmp_path):
    key = tmp_path / "signing.pem"
    assert run_manage("generate_signing_key", str(key), DEBUG="true").returncode == 0

    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="a-production-secret-key-that-is-long-and-random-" + "k3y" * 10,
        POSTURE_SIGNING_KEY_FILE=str(key),
        ALLOWED_HOSTS="posture.example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_gunicorn_refuses_to_serve_with_debug_on():
    environment = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "posture.wsgi", "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        env={**environment, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "DEBUG is on under gunicorn" in result.stderr


@pytest.mark.parametrize(("setting", "threshold"), [(None, "5"), ("false", "None")])
def test_prepared_statements_can_be_turned_off_for_a_pooler(setting, threshold):
    env = {"DATABASE_URL": "postgres://posture@db.example.com:5432/posture"}
    if setting is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = setting
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; "
        "print(settings.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold'))",
        **env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == threshold
