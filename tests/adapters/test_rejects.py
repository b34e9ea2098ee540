"""Every adapter endpoint answers bad input with a readable 4xx and stores nothing."""

import gzip

import orjson
import pytest

from tests.adapters.conftest import post
from tests.conftest import event_count

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/ingest/opa/logs",
    "/api/v1/ingest/opa/status",
    "/api/v1/ingest/gatekeeper",
    "/api/v1/ingest/kyverno",
    "/api/v1/ingest/ocsf",
]
BODIES = {
    "not json": (b"{not json", {}, 400, "bad_json"),
    "invalid utf-8": (b'[{"a": "\xff"}]', {}, 400, "bad_json"),
    "json number": (b"42", {}, 400, None),
    "array of numbers": (b"[1, 2]", {}, 400, "invalid_records"),
    "object of nothing known": (b'{"hello": "world"}', {}, 400, "invalid_records"),
    "wrong content type": (b"[]", {"content_type": "text/plain"}, 415, "unsupported_media_type"),
    "unknown encoding": (b"[]", {"HTTP_CONTENT_ENCODING": "br"}, 415, "unsupported_encoding"),
    "not gzip": (b"[]", {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "bad_gzip"),
    "truncated gzip": (
        gzip.compress(b"[]" * 100)[:-8],
        {"HTTP_CONTENT_ENCODING": "gzip"},
        400,
        "bad_gzip",
    ),
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("case", BODIES)
def test_bad_bodies_are_refused_readably(source_client, path, case):
    body, headers, status, reason = BODIES[case]

    response = post(source_client, path, body, **headers)

    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    if reason:
        assert response.json()["error"] == reason
    assert response.json()["detail"]
    assert event_count() == 0


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_body_over_the_size_limit_is_refused(source_client, settings, path):
    settings.POSTURE_INGEST_MAX_BYTES = 1000
    body = gzip.compress(orjson.dumps([{"padding": "x" * 5000}]))

    response = post(source_client, path, body, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert event_count() == 0


def test_more_decision_events_than_a_batch_holds_are_refused(source_client, settings):
    settings.POSTURE_INGEST_MAX_EVENTS = 2
    records = [{"decision_id": str(n), "timestamp": "2026-11-25T10:00:00Z"} for n in range(3)]

    response = post(source_client, "/api/v1/ingest/opa/logs", records)

    assert response.status_code == 413
    assert response.json()["error"] == "too_many_events"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_without_a_token_nothing_is_stored(client, path):
    response = client.post(path, data=b"[]", content_type="application/json")

    assert response.status_code == 401
    assert event_count() == 0


@pytest.mark.parametrize("path", ENDPOINTS)
def test_reading_an_ingest_endpoint_is_not_allowed(source_client, path):
    assert source_client.get(path).status_code == 405
