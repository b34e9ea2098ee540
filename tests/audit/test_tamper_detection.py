"""Tampering that gets past the triggers (the database owner switching them off) is caught."""

import base64
import contextlib
import hashlib
import io

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import connection

from audit import signing
from audit.canonical import GENESIS_HASH, canonical_json, chain_hash
from audit.guards import guards_create, guards_drop
from audit.models import ChainHead, Checkpoint, Event
from audit.services import checkpoint_create
from tests.conftest import event, post_events, raw_execute

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def guards_off():
    """What an attacker with the database owner's rights can do; undone by the test rollback."""
    if connection.vendor == "postgresql":
        raw_execute("SET LOCAL session_replication_role = replica")
        yield
        raw_execute("SET LOCAL session_replication_role = origin")
    else:
        guards_drop(connection)
        yield
        guards_create(connection)


def verify(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def ledger(source_client):
    post_events(source_client, [event(n) for n in range(1, 11)])


def row(seq: int) -> Event:
    return Event.objects.get(seq=seq)


def test_an_intact_ledger_verifies_with_a_summary(ledger):
    checkpoint_create()

    code, out = verify()

    assert code == 0
    assert "10 events in 2 chains, 1 checkpoints checked" in out
    assert "ledger intact" in out


def test_one_changed_byte_names_exactly_that_event(ledger):
    target = row(4)
    changed = bytes(target.canonical).replace(b'"allow"', b'"alloW"', 1)
    assert changed != bytes(target.canonical)
    with guards_off():
        raw_execute("UPDATE audit_event SET canonical = %s WHERE id = %s", [changed, target.pk])

    code, out = verify()

    assert code == 1
    assert (
        "BROKEN source=opa-prod seq=4 event_id=evt-4: hash does not match the stored bytes" in out
    )


def test_a_changed_typed_column_is_tampering_too(ledger):
    with guards_off():
        raw_execute("UPDATE audit_event SET outcome = 'allow' WHERE seq = 6")

    code, out = verify()

    assert code == 1
    assert "seq=6 event_id=evt-6: outcome column differs from the hashed record" in out


def test_a_deleted_row_is_caught_at_the_gap(ledger):
    with guards_off():
        raw_execute("DELETE FROM audit_event WHERE seq = 5")

    code, out = verify()

    assert code == 1
    assert "seq=6 event_id=evt-6: rows 5 to 5 are missing" in out


def test_two_swapped_rows_are_caught(ledger):
    with guards_off():
        raw_execute("UPDATE audit_event SET seq = -1 WHERE seq = 7")
        raw_execute("UPDATE audit_event SET seq = 7 WHERE seq = 8")
        raw_execute("UPDATE audit_event SET seq = 8 WHERE seq = -1")

    code, out = verify()

    assert code == 1
    assert "BROKEN source=opa-prod seq=7 event_id=evt-8" in out


def test_cutting_off_the_newest_rows_is_caught_by_the_checkpoint(ledger, source):
    checkpoint_create()
    with guards_off():
        raw_execute("DELETE FROM audit_event WHERE seq > 7")
    # The attacker also moves the head back so the chain looks whole.
    ChainHead.objects.filter(source=source).update(seq=7, hash=row(7).hash)

    code, out = verify()

    assert code == 1
    assert "seq=8 event_id=-: chain ends at seq 7 but checkpoint 1 signed seq 10" in out


def rewrite_chain(source) -> None:
    """Change one event and recompute every hash after it, as a careful forger would."""
    prev = GENESIS_HASH
    with guards_off():
        for stored in Event.objects.filter(source=source).order_by("seq"):
            record = orjson.loads(bytes(stored.canonical))
            if stored.seq == 3:
                record["event"]["outcome"] = "allow"
            canonical = canonical_json(record)
            digest = chain_hash(prev, canonical)
            raw_execute(
                "UPDATE audit_event SET canonical = %s, prev_hash = %s, hash = %s, outcome = %s "
                "WHERE id = %s",
                [canonical, prev, digest, record["event"]["outcome"], stored.pk],
            )
            prev = digest
    ChainHead.objects.filter(source=source).update(hash=prev)


def test_a_chain_rewritten_with_fresh_hashes_is_caught_by_the_signed_head(ledger, source):
    checkpoint_create()
    rewrite_chain(source)

    code, out = verify()

    assert code == 1
    assert "seq=10 event_id=evt-10: hash differs from the one signed in checkpoint 1" in out


def test_rewriting_the_checkpoint_as_well_breaks_its_signature(ledger, source):
    checkpoint = checkpoint_create()
    rewrite_chain(source)
    body = orjson.loads(bytes(checkpoint.body))
    body["heads"] = [{"source": "opa-prod", "seq": 10, "hash": row(10).hash}]
    forged = canonical_json(body)
    with guards_off():
        raw_execute(
            "UPDATE audit_checkpoint SET body = %s, hash = %s WHERE id = %s",
            [forged, hashlib.sha256(forged).hexdigest(), checkpoint.pk],
        )

    code, out = verify()

    assert code == 1
    assert "BROKEN checkpoint 1: signature is not valid" in out


def test_a_checkpoint_signed_by_another_key_is_refused(ledger, source):
    checkpoint_create()
    forger = Ed25519PrivateKey.generate()
    body = canonical_json(
        {
            "created_at": "2026-11-01T00:00:00.000000Z",
            "heads": [],
            "number": 2,
            "prev": Checkpoint.objects.get().hash,
            "v": 1,
        }
    )
    Checkpoint.objects.create(
        number=2,
        created_at="2026-11-01T00:00:00Z",
        body=body,
        hash=hashlib.sha256(body).hexdigest(),
        prev_hash=Checkpoint.objects.get().hash,
        signature=base64.b64encode(forger.sign(body)).decode(),
        public_key=signing.public_key_b64(forger.public_key()),
    )

    code, out = verify()

    assert code == 1
    assert "BROKEN checkpoint 2: signed by a key that is not trusted" in out


def test_a_deleted_checkpoint_is_caught_by_the_exported_copy(ledger, tmp_path):
    checkpoint_create()
    export = tmp_path / "checkpoints.jsonl"
    out = io.StringIO()
    call_command("export_checkpoints", stdout=out)
    export.write_text(out.getvalue())
    with guards_off():
        raw_execute("DELETE FROM audit_checkpoint")

    code, report = verify("--checkpoints", str(export))

    assert code == 1
    assert "checkpoint 1 of the export is missing from the database" in report


def test_verify_can_check_one_source(ledger):
    code, out = verify("--source", "opa-prod")

    assert code == 0
    assert "10 events in 1 chains" in out


def test_verify_of_an_unknown_source_is_a_readable_error(ledger):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no source named 'nope'"):
        call_command("verify_audit", "--source", "nope")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite keeps times as text")
def test_a_time_rewritten_as_other_text_for_the_same_instant_is_caught(ledger):
    # SQLite compares the text, so '2026-11-01T…' would fall out of range filters unseen.
    with guards_off():
        raw_execute(
            "UPDATE audit_event SET occurred_at = REPLACE(occurred_at, ' ', 'T') WHERE seq = 2"
        )

    code, out = verify()

    assert code == 1
    assert "seq=2 event_id=evt-2: occurred_at column differs from the hashed record" in out


def test_a_time_moved_by_one_second_is_caught(ledger):
    target = row(3)
    with guards_off():
        Event.objects.filter(pk=target.pk).update(occurred_at=target.occurred_at.replace(second=59))

    code, out = verify()

    assert code == 1
    assert "seq=3 event_id=evt-3: occurred_at column differs from the hashed record" in out
