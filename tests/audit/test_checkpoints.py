import hashlib

import orjson
import pytest
from rest_framework.test import APIClient

from audit import signing
from audit.models import ChainHead, Checkpoint
from audit.services import CheckpointRefused, checkpoint_create
from audit.tasks import checkpoint_create_task
from tests.audit.test_tamper_detection import guards_off
from tests.conftest import event, post_events, raw_execute

pytestmark = pytest.mark.django_db


def test_a_checkpoint_signs_the_heads_of_all_chains(source_client, source):
    post_events(source_client, [event(n) for n in range(1, 4)])

    checkpoint = checkpoint_create()

    body = orjson.loads(bytes(checkpoint.body))
    assert body["number"] == 1
    assert body["prev"] == "0" * 64
    head = ChainHead.objects.get(source=source)
    assert body["heads"] == [{"source": "opa-prod", "seq": 3, "hash": head.hash}]
    assert checkpoint.hash == hashlib.sha256(bytes(checkpoint.body)).hexdigest()
    assert signing.signature_valid(
        public_key=checkpoint.public_key,
        signature=checkpoint.signature,
        data=bytes(checkpoint.body),
    )


def test_nothing_is_signed_when_no_chain_moved(source_client):
    post_events(source_client, [event(1)])
    checkpoint_create()

    assert checkpoint_create() is None
    assert checkpoint_create_task() is None
    post_events(source_client, [event(2)])
    assert checkpoint_create_task() == 2
    assert Checkpoint.objects.get(number=2).prev_hash == Checkpoint.objects.get(number=1).hash


def test_it_refuses_to_sign_a_chain_that_does_not_extend_the_last_checkpoint(source_client):
    post_events(source_client, [event(n) for n in range(1, 4)])
    checkpoint_create()
    post_events(source_client, [event(4)])
    with guards_off():
        raw_execute("UPDATE audit_event SET reason = 'edited' WHERE seq = 4")

    with pytest.raises(CheckpointRefused, match="seq 4: reason column differs"):
        checkpoint_create()
    assert checkpoint_create_task() is None
    assert Checkpoint.objects.count() == 1


def test_new_checkpoints_are_also_written_outside_the_database(
    source_client, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.POSTURE_CHECKPOINT_EXPORT_DIR = str(tmp_path)
    post_events(source_client, [event(1)])

    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = checkpoint_create()

    lines = (tmp_path / "checkpoints.jsonl").read_text().splitlines()
    assert [orjson.loads(line)["hash"] for line in lines] == [checkpoint.hash]


def test_an_auditor_reads_checkpoints_and_the_public_key(source_client, people):
    post_events(source_client, [event(1)])
    checkpoint = checkpoint_create()
    client = APIClient()
    client.force_login(people["auditor"])

    listed = client.get("/api/v1/ledger/checkpoints").json()["results"]
    key = client.get("/api/v1/ledger/public-key").json()

    assert [c["hash"] for c in listed] == [checkpoint.hash]
    assert key["current"] == checkpoint.public_key
    assert signing.signature_valid(
        public_key=key["current"], signature=listed[0]["signature"], data=listed[0]["body"].encode()
    )


def test_an_auditor_creates_a_checkpoint_on_demand(source_client, people):
    post_events(source_client, [event(1)])
    client = APIClient()
    client.force_login(people["auditor"])

    response = client.post("/api/v1/ledger/checkpoints")

    assert response.status_code == 201
    assert Checkpoint.objects.get().number == response.json()["number"]


def test_a_failing_export_does_not_fail_the_stored_checkpoint(
    source_client, settings, tmp_path, django_capture_on_commit_callbacks
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the export folder should be")
    settings.POSTURE_CHECKPOINT_EXPORT_DIR = str(blocker)
    post_events(source_client, [event(1)])

    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = checkpoint_create()

    assert Checkpoint.objects.get().hash == checkpoint.hash
