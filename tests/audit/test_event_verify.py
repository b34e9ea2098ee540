"""Verifying one event where it stands: its hash, both links, its columns, its checkpoint."""

import pytest

from audit.canonical import chain_hash
from audit.models import ChainHead, Event
from audit.services import checkpoint_create
from audit.verify import ANCHOR_WALK_LIMIT, event_verify
from tests.audit.test_tamper_detection import guards_off
from tests.conftest import event, post_events, raw_execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(source_client):
    post_events(source_client, [event(n) for n in range(1, 11)])


def row(seq: int) -> Event:
    return Event.objects.select_related("source").get(source__name="opa-prod", seq=seq)


def checks(proof) -> dict[str, bool | None]:
    return {check.name: check.ok for check in proof.checks}


def test_an_intact_event_passes_every_check_but_the_missing_checkpoint(ledger):
    proof = event_verify(row(5))

    assert proof.ok
    assert checks(proof) == {
        "hash": True,
        "previous": True,
        "next": True,
        "columns": True,
        "checkpoint": None,  # none signed yet: not a failure
    }
    assert proof.recomputed_hash == row(5).hash
    assert proof.checkpoint is None


def test_the_first_row_links_to_the_genesis_hash_and_the_newest_to_the_head(ledger):
    first, last = event_verify(row(1)), event_verify(row(10))

    assert checks(first)["previous"] is True
    assert "genesis" in first.checks[1].detail
    assert checks(last)["next"] is True
    assert "chain head" in last.checks[2].detail


def test_a_signed_checkpoint_covers_the_event_and_the_chain_reaches_it(ledger):
    checkpoint = checkpoint_create()

    proof = event_verify(row(3))

    assert proof.ok
    assert proof.checkpoint == checkpoint.number
    assert checks(proof)["checkpoint"] is True
    assert "re-hashes from here" in proof.checks[-1].detail
    assert checks(event_verify(row(10)))["checkpoint"] is True  # the signed head itself


def test_the_first_checkpoint_that_covers_the_event_is_named(ledger, source_client):
    first = checkpoint_create()
    post_events(source_client, [event(n) for n in range(11, 14)])
    second = checkpoint_create()

    assert event_verify(row(4)).checkpoint == first.number
    assert event_verify(row(12)).checkpoint == second.number


def test_changed_bytes_fail_the_hash(ledger):
    target = row(4)
    changed = bytes(target.canonical).replace(b'"allow"', b'"alloW"', 1)
    with guards_off():
        raw_execute("UPDATE audit_event SET canonical = %s WHERE id = %s", [changed, target.pk])

    proof = event_verify(row(4))

    assert not proof.ok
    assert checks(proof)["hash"] is False
    assert checks(proof)["previous"] is True
    assert checks(proof)["next"] is True


def test_a_changed_typed_column_fails_the_columns_check(ledger):
    with guards_off():
        raw_execute(
            "UPDATE audit_event SET outcome = 'allow' WHERE id = %s", [row(6).pk]
        )  # evt-6 was a deny

    proof = event_verify(row(6))

    assert not proof.ok
    assert checks(proof)["hash"] is True  # the bytes are intact; the column lies
    assert checks(proof)["columns"] is False
    assert proof.checks[3].detail == "outcome column differs from the hashed record"


def test_a_rewritten_row_with_a_fresh_hash_breaks_the_next_link(ledger):
    target = row(5)
    changed = bytes(target.canonical).replace(b'"payments"', b'"elsewhere"', 1)
    fresh = chain_hash(target.prev_hash, changed)
    with guards_off():
        raw_execute(
            "UPDATE audit_event SET canonical = %s, hash = %s, service = 'elsewhere' WHERE id = %s",
            [changed, fresh, target.pk],
        )

    proof = event_verify(row(5))

    assert checks(proof)["hash"] is True
    assert checks(proof)["columns"] is True
    assert checks(proof)["next"] is False
    assert not proof.ok
    assert checks(event_verify(row(6)))["previous"] is False


def test_a_rewrite_under_a_checkpoint_is_caught_by_the_signed_head(ledger):
    checkpoint_create()
    with guards_off():
        # Rewrite the newest row whole, with its head, so every link still holds.
        target = row(10)
        changed = bytes(target.canonical).replace(b'"allow"', b'"deny"', 1)
        fresh = chain_hash(target.prev_hash, changed)
        raw_execute(
            "UPDATE audit_event SET canonical = %s, hash = %s, outcome = 'deny' WHERE id = %s",
            [changed, fresh, target.pk],
        )
        ChainHead.objects.filter(source=target.source).update(hash=fresh)

    proof = event_verify(row(10))

    assert checks(proof)["hash"] is True
    assert checks(proof)["next"] is True
    assert checks(proof)["checkpoint"] is False
    assert "signed another hash" in proof.checks[-1].detail
    assert checks(event_verify(row(8)))["checkpoint"] is False  # the walk to the head breaks


def test_a_deleted_neighbour_is_named(ledger):
    with guards_off():
        raw_execute("DELETE FROM audit_event WHERE id = %s", [row(7).pk])

    assert checks(event_verify(row(6)))["next"] is False
    assert checks(event_verify(row(8)))["previous"] is False
    assert "row 7 is missing" in event_verify(row(8)).checks[1].detail


def test_a_checkpoint_too_far_ahead_is_left_to_the_full_verification(ledger, monkeypatch):
    checkpoint_create()
    monkeypatch.setattr("audit.verify.ANCHOR_WALK_LIMIT", 2)

    proof = event_verify(row(2))

    assert ANCHOR_WALK_LIMIT > 2
    assert checks(proof)["checkpoint"] is None
    assert proof.ok
    assert "verify_audit" in proof.checks[-1].detail


def test_the_proof_serialises(ledger):
    data = event_verify(row(2)).as_dict()

    assert data["ok"] is True
    assert data["seq"] == 2
    assert [c["name"] for c in data["checks"]] == [
        "hash",
        "previous",
        "next",
        "columns",
        "checkpoint",
    ]
