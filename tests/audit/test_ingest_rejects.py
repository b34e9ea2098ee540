"""Every malformed input gets a 4xx with a readable error, and stores nothing."""

import gzip
import zlib

import orjson
import pytest
from rest_framework.test import APIClient

from audit.models import Event
from audit.services import source_create, source_token_create
from tests.conftest import event, post_events

pytestmark = pytest.mark.django_db

ONE_GOOD = [event(1)]


def gzip_bomb() -> bytes:
    # 64 MiB of zeros compresses to about 64 KiB: far under the limit on the wire.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"0" * (1024 * 1024)
    return b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()


def gzip_with_bits_flipped(body: bytes, *, at: int, bits: int) -> bytes:
    gzipped = bytearray(gzip.compress(body))
    gzipped[at] ^= bits
    return bytes(gzipped)


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


BODIES = {
    "not json": (b"{not json", {}, 400, "bad_json"),
    "truncated json": (b'[{"event_id": "a"', {}, 400, "bad_json"),
    "NaN literal": (b'[{"event_id": "a", "latency_ms": NaN}]', {}, 400, "bad_json"),
    "invalid utf-8": (b'[{"event_id": "\xff\xfe"}]', {}, 400, "bad_json"),
    "json string": (b'"events"', {}, 400, "bad_shape"),
    "json number": (b"42", {}, 400, "bad_shape"),
    "object without events": (b'{"items": []}', {}, 400, "bad_shape"),
    "events not a list": (b'{"events": {}}', {}, 400, "bad_shape"),
    "object with extra keys": (orjson.dumps({"events": ONE_GOOD, "x": 1}), {}, 400, "bad_shape"),
    "wrong content type": (
        orjson.dumps(ONE_GOOD),
        {"content_type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    "form content type": (
        b"a=1",
        {"content_type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    "unknown content encoding": (
        orjson.dumps(ONE_GOOD),
        {"HTTP_CONTENT_ENCODING": "br"},
        415,
        "unsupported_encoding",
    ),
    "gzip header but plain body": (
        orjson.dumps(ONE_GOOD),
        {"HTTP_CONTENT_ENCODING": "gzip"},
        400,
        "bad_gzip",
    ),
    "data after the gzip stream": (
        gzip.compress(orjson.dumps(ONE_GOOD)) + b"trailing",
        {"HTTP_CONTENT_ENCODING": "gzip"},
        400,
        "bad_gzip",
    ),
    "truncated gzip": (
        gzip.compress(orjson.dumps(ONE_GOOD))[:-10],
        {"HTTP_CONTENT_ENCODING": "gzip"},
        400,
        "bad_gzip",
    ),
    "gzip with a wrong checksum": (
        # The first byte of the trailer's CRC-32.
        gzip_with_bits_flipped(orjson.dumps(ONE_GOOD), at=-8, bits=1),
        {"HTTP_CONTENT_ENCODING": "gzip"},
        400,
        "bad_gzip",
    ),
    "gzip with a reserved header flag": (
        # FLG, the header's fourth byte: a bit RFC 1952 reserves, which a reader must refuse.
        gzip_with_bits_flipped(orjson.dumps(ONE_GOOD), at=3, bits=0x20),
        {"HTTP_CONTENT_ENCODING": "gzip"},
        400,
        "bad_gzip",
    ),
    "gzip bomb": (gzip_bomb(), {"HTTP_CONTENT_ENCODING": "gzip"}, 413, "too_large"),
    "oversized body": (b"[" + b" " * (6 * 1024 * 1024) + b"]", {}, 413, "too_large"),
    "too many events": (orjson.dumps([event(n) for n in range(1001)]), {}, 413, "too_many_events"),
    "nesting beyond the JSON parser's limit": (
        orjson.dumps([event(1)])[:-2]
        + b',"attributes":'
        + b'{"a":' * 5000
        + b"{}"
        + b"}" * 5000
        + b"}]",
        {},
        400,
        "bad_json",
    ),
}


@pytest.mark.parametrize("name", BODIES)
def test_a_bad_body_is_refused_whole(source_client, name):
    body, headers, status, reason = BODIES[name]
    response = post_events(source_client, body, **headers)

    assert response.status_code == status, response.content
    assert response.json()["error"] == reason
    assert response.json()["detail"]
    assert Event.objects.count() == 0


BAD_EVENTS = {
    "not an object": ("just a string", "event"),
    "missing event_id": ({k: v for k, v in event(1).items() if k != "event_id"}, "event_id"),
    "empty event_id": (event(1, event_id=""), "event_id"),
    "huge event_id": (event(1, event_id="x" * 129), "event_id"),
    "event_id not a string": (event(1, event_id=7), "event_id"),
    "unknown kind": (event(1, kind="telemetry"), "kind"),
    "internal kind": (event(1, kind="exception_transition"), "kind"),
    "missing occurred_at": (
        {k: v for k, v in event(1).items() if k != "occurred_at"},
        "occurred_at",
    ),
    "naive occurred_at": (event(1, occurred_at="2026-11-01T10:00:00"), "occurred_at"),
    "date-only occurred_at": (event(1, occurred_at="2026-11-01"), "occurred_at"),
    "impossible date": (event(1, occurred_at="2026-02-30T10:00:00Z"), "occurred_at"),
    "occurred_at a number": (event(1, occurred_at=1767225600), "occurred_at"),
    "time after year 9999 in UTC": (
        event(1, occurred_at="9999-12-31T23:59:59-01:00"),
        "occurred_at",
    ),
    "time on 9999-12-31 in UTC": (event(1, occurred_at="9999-12-31T00:00:00Z"), "occurred_at"),
    "time before year 1 in UTC": (event(1, detected_at="0001-01-01T00:00:00+01:00"), "detected_at"),
    "kind a list": (event(1, kind=["decision"]), "kind"),
    "kind an object": (event(1, kind={"a": 1}), "kind"),
    "NUL in a typed string": (event(1, reason="a\x00b"), "reason"),
    "NUL in the event id": (event(1, event_id="a\x00b"), "event_id"),
    "unknown top-level field": (event(1, cluster="eu-1"), "cluster"),
    "bad outcome": (event(1, outcome="maybe"), "outcome"),
    "bad mode": (event(1, mode="strict"), "mode"),
    "bad severity": (event(1, kind="violation", severity="urgent"), "severity"),
    "enforced as string": (event(1, enforced="yes"), "enforced"),
    "negative latency": (event(1, latency_ms=-1), "latency_ms"),
    "latency as string": (event(1, latency_ms="12"), "latency_ms"),
    "latency as boolean": (event(1, latency_ms=True), "latency_ms"),
    "latency beyond 10^12 ms": (event(1, latency_ms=10**12 + 1), "latency_ms"),
    "negative source_seq": (event(1, source_seq=-5), "source_seq"),
    "source_seq too big": (event(1, source_seq=2**63), "source_seq"),
    "source_seq float": (event(1, source_seq=1.5), "source_seq"),
    "huge reason": (event(1, reason="r" * 5000), "reason"),
    "huge resource": (event(1, resource="r" * 2000), "resource"),
    "rule not a string": (event(1, rule=["a"]), "rule"),
    "bad trace id": (event(1, trace_id="XYZ"), "trace_id"),
    "attributes not an object": (event(1, attributes=[1, 2]), "attributes"),
    "attributes too big": (event(1, attributes={"blob": "x" * 17000}), "attributes"),
    "attributes nested too deep": (event(1, attributes=nested(40)), "attributes"),
    "decision without outcome": ({k: v for k, v in event(1).items() if k != "outcome"}, "outcome"),
    "decision without rule or policy": (
        {k: v for k, v in event(1).items() if k not in ("rule", "policy")},
        "rule",
    ),
    "violation without severity": (
        {k: v for k, v in event(1, kind="violation").items() if k != "outcome"},
        "severity",
    ),
    "null instead of leaving a field out": (event(1, service=None), "service"),
    "remediation without status": (event(1, kind="remediation"), "status"),
    "status of another kind": (event(1, status="resolved"), "status"),
    "deployment without commit time": (
        event(1, kind="policy_deployment", policy_version="v2"),
        "committed_at",
    ),
    "deployment committed on 9999-12-31": (
        event(
            1, kind="policy_deployment", policy_version="v2", committed_at="9999-12-31T10:00:00Z"
        ),
        "committed_at",
    ),
    "inventory covered above total": (
        event(1, kind="inventory", resources_total=10, resources_covered=11),
        "resources_covered",
    ),
    "heartbeat field on a decision": (event(1, emitted_total=5), "emitted_total"),
}


@pytest.mark.parametrize("name", BAD_EVENTS)
def test_a_batch_with_one_bad_event_is_refused_whole(source_client, name):
    bad, field = BAD_EVENTS[name]
    batch = [event(10), event(11), bad, event(12)]

    response = post_events(source_client, batch)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_events"
    assert "nothing was stored" in body["detail"]
    assert [problem["index"] for problem in body["events"]] == [2]
    assert field in body["events"][0]["errors"]
    assert Event.objects.count() == 0


def test_attributes_nested_deeper_than_the_serialiser_goes_are_refused(source_client):
    # 300 levels parse as JSON but cannot be serialised again: a clear 400, not a crash.
    body = orjson.dumps([event(1)])[:-2] + b',"attributes":' + b'{"a":' * 300 + b"{}" + b"}" * 300
    response = post_events(source_client, body + b"}]")

    assert response.status_code == 400, response.content
    assert "nested" in response.json()["events"][0]["errors"]["attributes"]
    assert Event.objects.count() == 0


def test_errors_of_one_event_are_capped_so_the_reply_stays_small(source_client):
    flooded = event(1, **{f"unknown_{n}": n for n in range(500)})

    response = post_events(source_client, [flooded])

    errors = response.json()["events"][0]["errors"]
    assert response.status_code == 400
    assert len(errors) == 21
    assert errors["..."] == "480 more fields are wrong"
    assert len(response.content) < 4000


def test_the_error_lists_every_bad_event_with_its_fields(source_client):
    batch = [event(1, outcome="nope"), event(2), event(3, latency_ms=-2, mode="x")]

    body = post_events(source_client, batch).json()

    assert [(e["index"], e["event_id"], sorted(e["errors"])) for e in body["events"]] == [
        (0, "evt-1", ["outcome"]),
        (2, "evt-3", ["latency_ms", "mode"]),
    ]


def test_a_repeated_event_id_with_other_content_is_refused(source_client):
    response = post_events(source_client, [event(1), event(1, outcome="deny")])

    assert response.status_code == 400
    assert "different content" in response.json()["events"][0]["errors"]["event_id"]
    assert Event.objects.count() == 0


def test_without_a_token_nothing_is_stored(client):
    response = client.post(
        "/api/v1/events", data=orjson.dumps(ONE_GOOD), content_type="application/json"
    )

    assert response.status_code in (401, 403)
    assert Event.objects.count() == 0


def test_an_unknown_token_is_refused(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer pst_not-a-real-token")

    response = post_events(client, ONE_GOOD)

    assert response.status_code == 401
    assert "unknown" in response.json()["detail"]
    assert Event.objects.count() == 0


def test_each_token_writes_to_its_own_source_only(source_client, source):
    other = source_create(name="kyverno-staging", kind="kyverno", environment="staging")
    other_client = APIClient()
    other_client.credentials(HTTP_AUTHORIZATION=f"Bearer {source_token_create(source=other)[1]}")

    post_events(source_client, [event(1), event(2)])
    post_events(other_client, [event(3)])

    assert sorted(Event.objects.filter(source=source).values_list("event_id", flat=True)) == [
        "evt-1",
        "evt-2",
    ]
    assert list(Event.objects.filter(source=other).values_list("event_id", flat=True)) == ["evt-3"]


def test_a_revoked_token_is_refused(source):
    from audit.services import source_token_revoke

    token, plain = source_token_create(source=source)
    source_token_revoke(token=token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")

    response = post_events(client, ONE_GOOD)

    assert response.status_code == 401
    assert Event.objects.count() == 0


def test_an_expired_token_is_refused(source):
    from datetime import UTC, datetime, timedelta

    _, plain = source_token_create(
        source=source, expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")

    assert post_events(client, ONE_GOOD).status_code == 401
    assert Event.objects.count() == 0


def test_a_person_cannot_post_events(people):
    client = APIClient()
    client.force_authenticate(people["admin"])

    response = post_events(client, ONE_GOOD)

    assert response.status_code == 403
    assert Event.objects.count() == 0


def test_an_empty_batch_stores_nothing_and_says_so(source_client):
    response = post_events(source_client, [])

    assert response.status_code == 200
    assert response.json()["accepted"] == 0
