"""Fixtures of the engine formats (tests/adapters/fixtures, each written from the engine's
documentation: docs/adapters.md names the section) and a client helper for the endpoints."""

import gzip
from pathlib import Path

import orjson
import pytest
from rest_framework.test import APIClient

from audit.models import Event
from audit.services import source_create, source_token_create

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture(name: str):
    return orjson.loads(fixture_bytes(name))


def post(client: APIClient, path: str, payload, *, gzipped: bool = False, **headers):
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    if gzipped:
        body = gzip.compress(body)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    headers.setdefault("content_type", "application/json")
    return client.post(path, data=body, **headers)


def events_by_id() -> dict[str, Event]:
    return {event.event_id: event for event in Event.objects.all()}


def payload(event: Event) -> dict:
    """The stored event as hashed (the `event` part of the canonical record)."""
    return orjson.loads(bytes(event.canonical))["event"]


@pytest.fixture
def other_client(db) -> APIClient:
    """A client holding the token of a second source."""
    other = source_create(name="kyverno-staging", kind="kyverno", environment="staging")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {source_token_create(source=other)[1]}")
    return client
