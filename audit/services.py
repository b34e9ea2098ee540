"""Writes to the ledger. Nothing outside audit/ writes ledger rows."""

import dataclasses
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction

from audit import signing, storage
from audit.canonical import (
    GENESIS_HASH,
    canonical_json,
    chain_digest,
    format_timestamp,
    record_template,
)
from audit.events import EventRecord, typed_columns, validate_batch
from audit.fastcheck import fast_records
from audit.ingest import IngestRejected, parse_events, read_body
from audit.models import (
    ChainHead,
    Checkpoint,
    Event,
    EventKind,
    Source,
    SourceKind,
    SourceToken,
    VerificationRun,
    VerificationStatus,
)
from audit.signals import events_appended
from audit.verify import CheckpointRecord, chain_walk, ledger_verify

logger = logging.getLogger(__name__)

SOURCE_TOKEN_PREFIX = "pst_"  # noqa: S105 (a public prefix, not a secret)


@dataclass(frozen=True)
class AppendResult:
    accepted: int
    duplicates: int
    first_seq: int | None
    last_seq: int | None
    head_seq: int
    head_hash: str

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
        }


def token_digest(token: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def source_create(
    *,
    name: str,
    kind: str,
    environment: str = "",
    owner: str = "",
    heartbeat_interval_seconds: int = 300,
) -> Source:
    source = Source(
        name=name,
        kind=kind,
        environment=environment,
        owner=owner,
        heartbeat_interval_seconds=heartbeat_interval_seconds,
    )
    source.full_clean()
    source.save()
    ChainHead.objects.create(source=source)
    return source


INTERNAL_SOURCE_NAME = "posture"


def internal_source_ensure() -> Source:
    """Posture's own audit trail (exception transitions, triage, report digests) is a chain too."""
    source = Source.objects.filter(name=INTERNAL_SOURCE_NAME).first()
    if source is None:
        source = source_create(name=INTERNAL_SOURCE_NAME, kind=SourceKind.INTERNAL, owner="posture")
    return source


def source_token_create(
    *, source: Source, label: str = "", expires_at: datetime | None = None
) -> tuple[SourceToken, str]:
    """A new token for `source`; the plain token is returned once and never stored."""
    if source.kind == SourceKind.INTERNAL:
        raise ValueError("the internal source takes no tokens")
    plain = SOURCE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = SourceToken.objects.create(
        source=source,
        label=label,
        token_hash=token_digest(plain),
        token_prefix=plain[:10],
        expires_at=expires_at,
    )
    return token, plain


def source_token_revoke(*, token: SourceToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        token.save(update_fields=["revoked_at"])


def ledger_append_batch(*, source: Source, records: list[EventRecord]) -> AppendResult:
    """Chain and store `records` atomically; records whose event_id is stored are duplicates.

    The chain head's row lock serialises appends to one source, so each chain stays gap-free
    while different sources append in parallel. Most batches hold only new events, so they
    are written without looking for stored ids first; a retried batch trips the unique
    (source, event_id) constraint, and is then redone once, leaving the stored events out.
    """
    try:
        return _append(source, records, skip_stored=False)
    except IntegrityError:
        return _append(source, records, skip_stored=True)


def _append(source: Source, records: list[EventRecord], *, skip_stored: bool) -> AppendResult:
    # Received now, before waiting for the chain's lock.
    received = datetime.now(UTC)
    # The outermost transaction commits without waiting for the disk, which releases the
    # chain's lock sooner, and then waits for the disk outside it (storage.wal_flush): the
    # caller hears of the append only once it is durable either way.
    # (Django turns autocommit off inside atomic blocks, and a caller managing its own
    # transaction has it off too: then the caller's commit decides, as it always did.)
    outermost = transaction.get_autocommit()
    with transaction.atomic():
        if outermost:
            storage.commit_without_flush()
        seq, prev_hash, head_received = storage.chain_head_lock(source.pk)
        if head_received is not None and received < head_received:
            # Another append took the lock first with a later time: received_at never goes
            # back along a chain.
            received = head_received
        received_text = format_timestamp(received)
        received_at = datetime.fromisoformat(received_text)
        template = record_template(received_at=received_text, source=source.name)
        stored = (
            storage.existing_event_ids(source.pk, [r.event_id for r in records])
            if skip_stored
            else set()
        )
        first_seq = seq + 1
        source_id = source.pk
        prev_digest = bytes.fromhex(prev_hash)
        rows = []
        for record in records:
            if record.event_id in stored:
                continue
            seq += 1
            canonical = template % (record.event_bytes, seq)
            digest = chain_digest(prev_digest, canonical)
            digest_hex = digest.hex()
            rows.append(
                (source_id, seq, received_at, prev_hash, digest_hex, canonical, *record.columns)
            )
            prev_digest, prev_hash = digest, digest_hex
        if rows:
            storage.events_insert(rows)
            storage.chain_head_move(source.pk, seq=seq, digest=prev_hash, at=received_at)
            transaction.on_commit(
                lambda: events_appended.send(sender=Source, source_id=source_id), robust=True
            )
    if outermost:
        # Also when every event was a duplicate: the append that stored them may not have
        # reached the disk yet, and this one is about to say they are stored.
        storage.wal_flush()
    return AppendResult(
        accepted=len(rows),
        duplicates=len(records) - len(rows),
        first_seq=first_seq if rows else None,
        last_seq=seq if rows else None,
        head_seq=seq,
        head_hash=prev_hash,
    )


INTERNAL_KINDS = (EventKind.EXCEPTION_TRANSITION, EventKind.TRIAGE_LABEL, EventKind.REPORT_DIGEST)


def internal_event_append(
    *, kind: str, subject: str, attributes: dict, **fields: str | None
) -> Event:
    """Append one of Posture's own events (a triage label, an exception transition, ...) to
    the internal chain, and give the stored row. `subject` is the person who acted."""
    if kind not in INTERNAL_KINDS:
        raise ValueError(f"{kind!r} is not an internal event kind")
    event = {
        "event_id": uuid.uuid4().hex,
        "kind": kind,
        "occurred_at": format_timestamp(datetime.now(UTC)),
        "subject": subject,
        "attributes": attributes,
        **{name: value for name, value in fields.items() if value is not None},
    }
    record = EventRecord(event["event_id"], canonical_json(event), tuple(typed_columns(event)))
    result = ledger_append_batch(source=internal_source_ensure(), records=[record])
    return Event.objects.get(source__name=INTERNAL_SOURCE_NAME, seq=result.last_seq)


class CheckpointRefused(Exception):
    """The chains no longer extend the last signed checkpoint; nothing was signed."""


def checkpoint_create(*, force: bool = False) -> Checkpoint | None:
    """Sign the heads of all chains, if any moved since the last checkpoint (or if `force`).

    Refuses to sign unless every chain extends the heads signed last time: the new segment of
    each chain is re-hashed and must link to the previously signed head.
    """
    with transaction.atomic():
        storage.checkpoint_lock()
        last = Checkpoint.objects.order_by("-number").first()
        heads = list(
            ChainHead.objects.select_related("source").filter(seq__gt=0).order_by("source__name")
        )
        current = [{"hash": h.hash, "seq": h.seq, "source": h.source.name} for h in heads]
        previous = orjson.loads(bytes(last.body))["heads"] if last else []
        if last is not None and current == previous and not force:
            return None
        _check_extends(heads, previous)
        created_at = datetime.now(UTC)
        prev_hash = last.hash if last else GENESIS_HASH
        number = last.number + 1 if last else 1
        body = canonical_json(
            {
                "created_at": format_timestamp(created_at),
                "heads": current,
                "number": number,
                "prev": prev_hash,
                "v": 1,
            }
        )
        checkpoint = Checkpoint.objects.create(
            number=number,
            created_at=created_at,
            body=body,
            hash=hashlib.sha256(body).hexdigest(),
            prev_hash=prev_hash,
            signature=signing.sign(body),
            public_key=signing.current_public_key(),
        )
        transaction.on_commit(lambda: _export_checkpoint(checkpoint))
    return checkpoint


def _check_extends(heads: list[ChainHead], previous: list[dict]) -> None:
    previous_by_source = {head["source"]: head for head in previous}
    for head in heads:
        signed = previous_by_source.pop(head.source.name, {"seq": 0, "hash": GENESIS_HASH})
        if head.seq < signed["seq"]:
            raise CheckpointRefused(
                f"{head.source.name}: head seq {head.seq} is behind signed seq {signed['seq']}"
            )
        walk = chain_walk(
            head.source, after_seq=signed["seq"], after_hash=signed["hash"], until_seq=head.seq
        )
        if walk.broken is not None:
            raise CheckpointRefused(
                f"{walk.broken.source} seq {walk.broken.seq}: {walk.broken.problem}"
            )
        if (walk.last_seq, walk.last_hash) != (head.seq, head.hash):
            raise CheckpointRefused(f"{head.source.name}: the chain does not end at its head")
    if previous_by_source:
        raise CheckpointRefused(f"signed chains are gone: {', '.join(sorted(previous_by_source))}")


def _export_checkpoint(checkpoint: Checkpoint) -> None:
    """Keep a copy outside the database, one JSON line per checkpoint."""
    folder = settings.POSTURE_CHECKPOINT_EXPORT_DIR
    if not folder:
        return
    path = Path(folder) / "checkpoints.jsonl"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as handle:
            handle.write(orjson.dumps(CheckpointRecord.from_model(checkpoint).as_export()) + b"\n")
    except OSError:
        # The checkpoint is stored and signed; `export_checkpoints` can copy it out later.
        logger.exception("could not append checkpoint %s to %s", checkpoint.number, path)


MAX_EVENT_ERRORS_SHOWN = 100


def batch_records(
    *,
    document: bytes,
    source: Source,
    max_events: int,
    parsed: list | None = None,
    origins: list[str] | None = None,
) -> tuple[list[EventRecord], int]:
    """The records of a batch of native events and how many events it held, or
    IngestRejected naming each bad event (and, given `origins`, the engine record it came
    from). The fast path first; the Python checks when it is not sure. `parsed`: the events
    already parsed from `document`, when the caller has them."""
    fast = fast_records(document, default_environment=source.environment, max_events=max_events)
    if fast is not None:
        return fast
    events = parsed if parsed is not None else parse_events(document, max_events=max_events)
    records, errors = validate_batch(events, default_environment=source.environment)
    if errors:
        what = "mapped events" if origins else "events"
        raise IngestRejected(
            400,
            "invalid_events",
            f"{len(errors)} of {len(events)} {what} are invalid; nothing was stored",
            events=[
                {**error.as_dict(), **({"record": origins[error.index]} if origins else {})}
                for error in errors[:MAX_EVENT_ERRORS_SHOWN]
            ],
        )
    return records, len(events)


def ingest_native(
    *, source: Source, body: bytes, content_type: str, content_encoding: str
) -> AppendResult:
    """The native ingest path: read, validate and append one batch, all or nothing.

    Raises IngestRejected (nothing stored) for a body or an event that is not acceptable.
    """
    document = read_body(
        body,
        content_type=content_type,
        content_encoding=content_encoding,
        max_bytes=settings.POSTURE_INGEST_MAX_BYTES,
    )
    records, received = batch_records(
        document=document, source=source, max_events=settings.POSTURE_INGEST_MAX_EVENTS
    )
    result = ledger_append_batch(source=source, records=records)
    repeated_in_batch = received - len(records)
    if repeated_in_batch:
        result = dataclasses.replace(result, duplicates=result.duplicates + repeated_in_batch)
    return result


def verification_run(
    *, source_name: str = "", run: VerificationRun | None = None
) -> VerificationRun:
    """Verify the ledger and record what was found (into `run` if one was already started)."""
    if run is None:
        run = VerificationRun.objects.create(
            started_at=datetime.now(UTC), status=VerificationStatus.RUNNING, source_name=source_name
        )
    report = ledger_verify(source_name=run.source_name or None)
    run.finished_at = datetime.now(UTC)
    run.status = VerificationStatus.PASSED if report.ok else VerificationStatus.FAILED
    run.result = report.as_dict()
    run.save(update_fields=["finished_at", "status", "result"])
    if not report.ok:
        logger.error("ledger verification failed", extra={"result": run.result})
    return run
