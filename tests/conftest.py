"""Shared test fixtures: personas, sources with tokens, and the ledger guards around flushes."""

import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from rest_framework.test import APIClient

from audit.guards import guards_create, guards_drop
from audit.models import Event
from audit.services import source_create, source_token_create
from posture.roles import ROLES


@pytest.fixture(autouse=True, scope="session")
def _ledger_flushable():
    """Transactional tests end with a flush (TRUNCATE or DELETE) that the ledger guards refuse.

    Test teardown is the database owner clearing a scratch database, so the guards step aside
    for exactly that statement and are back before the next test.
    """
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        if self.connection.vendor == "postgresql":
            with transaction.atomic(using=self.connection.alias):
                with self.connection.cursor() as cursor:
                    cursor.execute("SET LOCAL session_replication_role = replica")
                original(self, sql_list)
        else:
            guards_drop(self.connection)
            try:
                original(self, sql_list)
            finally:
                guards_create(self.connection)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    BaseDatabaseOperations.execute_sql_flush = original


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs seconds per persona and tests nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _signing_key(settings, tmp_path_factory):
    """Every test signs with a throwaway key in its own folder, never the developer's."""
    from audit import signing

    key_file = tmp_path_factory.mktemp("keys") / "signing-key.pem"
    signing.write_new_key(key_file)
    settings.POSTURE_SIGNING_KEY = ""
    settings.POSTURE_SIGNING_KEY_FILE = str(key_file)
    settings.POSTURE_TRUSTED_PUBLIC_KEYS = []
    signing.signing_key.cache_clear()
    yield
    signing.signing_key.cache_clear()


def make_person(username: str, *roles: str) -> User:
    user = User.objects.create_user(username=username, password="a-long-test-password-1")
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def people(db) -> dict[str, User]:
    """One person per role, named after it, plus `nobody` with no role."""
    persons = {role: make_person(role, role) for role in ROLES}
    persons["admin"].is_staff = True  # the Django admin is part of the admin role's job
    persons["admin"].save(update_fields=["is_staff"])
    persons["nobody"] = make_person("nobody")
    return persons


@pytest.fixture
def source(db):
    return source_create(name="opa-prod", kind="opa", environment="prod")


@pytest.fixture
def source_token(source) -> str:
    return source_token_create(source=source)[1]


@pytest.fixture
def source_client(source_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {source_token}")
    return client


def event(n: int, **fields) -> dict:
    """A valid decision event; keyword arguments override or add fields."""
    base = {
        "event_id": f"evt-{n}",
        "kind": "decision",
        "occurred_at": (datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat(),
        "policy": "kubernetes.admission",
        "rule": "require-labels",
        "outcome": "deny" if n % 3 == 0 else "allow",
        "mode": "enforce",
        "enforced": True,
        "latency_ms": 1.5 + n % 7,
        "service": "payments",
        "resource": f"deployment/payments-{n}",
    }
    base.update(fields)
    return base


def post_events(client: APIClient, payload, *, gzipped: bool = False, **headers):
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    if gzipped:
        body = gzip.compress(body)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    headers.setdefault("content_type", "application/json")
    return client.post("/api/v1/events", data=body, **headers)


def violation(n: int, **fields) -> dict:
    """A valid open violation: event() without a decision's own fields; keyword arguments
    override or add fields."""
    decision_only = ("outcome", "mode", "enforced", "latency_ms")
    base = {name: value for name, value in event(n).items() if name not in decision_only}
    return {**base, "kind": "violation", "severity": "high", **fields}


def event_count() -> int:
    return Event.objects.count()


def raw_execute(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
