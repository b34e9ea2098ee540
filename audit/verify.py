"""Ledger verification: re-hash every chain from its stored bytes, check that the typed columns
still say what the hashed bytes say, and check the signed checkpoints.

A hash chain alone cannot show that its newest rows were cut off, or that it was rewritten
whole with fresh hashes; the signed checkpoints anchor it, so both are caught here.
"""

import hashlib
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.db import connection, connections, transaction

from audit import storage
from audit.canonical import GENESIS_HASH, NotCanonicalJSON, canonical_loads, chain_hash
from audit.events import TIMESTAMP_FIELDS, TYPED_FIELDS, typed_columns
from audit.models import ChainHead, Checkpoint, Event, Source
from audit.signing import signature_valid, trusted_public_keys

FETCH_SIZE = 2000
_ROW_COLUMNS = ("seq", "event_id", "prev_hash", "hash", "canonical", "received_at", *TYPED_FIELDS)
_TYPED_OFFSET = len(_ROW_COLUMNS) - len(TYPED_FIELDS)
_TIME_COLUMNS = ("received_at", *TIMESTAMP_FIELDS)
_TIME_POSITIONS = tuple(TYPED_FIELDS.index(name) for name in TIMESTAMP_FIELDS)


@dataclass(frozen=True)
class ChainBreak:
    """The first bad row of one chain."""

    source: str
    seq: int
    event_id: str | None
    problem: str

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "seq": self.seq,
            "event_id": self.event_id,
            "problem": self.problem,
        }


@dataclass
class ChainWalk:
    events_checked: int
    last_seq: int
    last_hash: str
    broken: ChainBreak | None


@dataclass
class VerifyReport:
    events_checked: int = 0
    chains_checked: int = 0
    checkpoints_checked: int = 0
    seconds: float = 0.0
    breaks: list[ChainBreak] = field(default_factory=list)
    checkpoint_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.checkpoint_problems

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "chains_checked": self.chains_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_checked / self.seconds)
            if self.seconds
            else None,
            "broken_chains": [b.as_dict() for b in self.breaks],
            "checkpoint_problems": self.checkpoint_problems,
        }


@dataclass(frozen=True)
class SignedHead:
    checkpoint: int
    seq: int
    hash: str


def _rows(source_id: int, after_seq: int, until_seq: int | None) -> Iterator[tuple]:
    """One chain's rows in seq order, streamed by one query (a server-side cursor on PostgreSQL).

    One query rather than pages, so a stale query plan can cost one sort, never one per page.
    """
    text_times = connection.vendor == "sqlite"
    columns = ", ".join(
        # SQLite keeps times as text and compares them as text: check that text exactly.
        f'CAST("{name}" AS TEXT)' if text_times and name in _TIME_COLUMNS else f'"{name}"'
        for name in _ROW_COLUMNS
    )
    until = " AND seq <= %s" if until_seq is not None else ""
    sql = (
        f"SELECT {columns} FROM audit_event WHERE source_id = %s AND seq > %s{until} "  # noqa: S608
        "ORDER BY seq"
    )
    params = [source_id, after_seq] + ([until_seq] if until_seq is not None else [])
    if connection.vendor == "postgresql":
        # psycopg's own server-side cursor in binary: decoding times from text in Python was
        # a third of verification time.
        connection.ensure_connection()
        cursor = connection.connection.cursor(name=f"verify_{source_id}", binary=True)
    else:
        cursor = connection.chunked_cursor()
    with cursor:
        cursor.execute(sql, params)
        while page := cursor.fetchmany(FETCH_SIZE):
            yield from page


def _own_time(value: object) -> datetime | None:
    """A time Posture wrote itself (RFC 3339 UTC), read without the strict checks of ingest."""
    try:
        return datetime.fromisoformat(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _as_text(moment: datetime | None) -> str | None:
    return None if moment is None else storage.sqlite_time(moment)


def _column_mismatch(row: tuple, record: dict, source_name: str, text_times: bool) -> str | None:
    """The first typed column that disagrees with the hashed record, if any.

    `text_times`: the row holds times as the text SQLite stores, not as datetimes.
    """
    if record.get("v") != 1 or record.get("source") != source_name:
        return "hashed record names another source or format"
    if record.get("seq") != row[0]:
        return f"hashed record says seq {record.get('seq')}"
    received_at = _own_time(record.get("received_at"))
    if row[5] != (_as_text(received_at) if text_times else received_at):
        return "received_at column differs from the hashed record"
    event = record.get("event")
    if not isinstance(event, dict) or event.get("event_id") != row[1]:
        return "event_id column differs from the hashed record"
    expected = typed_columns(event)
    if text_times:
        for position in _TIME_POSITIONS:
            expected[position] = _as_text(expected[position])
    if tuple(expected) == row[_TYPED_OFFSET:]:
        return None
    for name, wanted, actual in zip(TYPED_FIELDS, expected, row[_TYPED_OFFSET:], strict=True):
        if actual != wanted:
            return f"{name} column differs from the hashed record"
    return None


def _row_problem(
    row: tuple,
    expected_seq: int,
    prev_hash: str,
    source_name: str,
    anchors: dict,
    text_times: bool,
) -> str | None:
    """What is wrong with one row, given the row before it; None when it is sound."""
    seq, _, stored_prev, stored_hash, canonical = row[:5]
    canonical = bytes(canonical)
    if seq != expected_seq:
        return f"rows {expected_seq} to {seq - 1} are missing"
    if stored_prev != prev_hash:
        return "prev_hash does not link to the previous row"
    if hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest() != stored_hash:
        return "hash does not match the stored bytes"
    try:
        record = canonical_loads(canonical)
    except NotCanonicalJSON:
        return "stored bytes are not JSON"
    mismatch = _column_mismatch(row, record, source_name, text_times)
    if mismatch:
        return mismatch
    anchor = anchors.get(seq)
    if anchor is not None and anchor.hash != stored_hash:
        return f"hash differs from the one signed in checkpoint {anchor.checkpoint}"
    return None


def chain_walk(
    source: Source,
    *,
    after_seq: int = 0,
    after_hash: str = GENESIS_HASH,
    until_seq: int | None = None,
    signed_heads: Iterable[SignedHead] = (),
) -> ChainWalk:
    """Re-hash one chain (or the part after a known link) and stop at its first bad row."""
    anchors = {head.seq: head for head in signed_heads}
    text_times = connection.vendor == "sqlite"
    expected_seq, prev_hash, checked = after_seq + 1, after_hash, 0
    # In a transaction, PostgreSQL streams the rows instead of materialising them first.
    with transaction.atomic(), closing(_rows(source.pk, after_seq, until_seq)) as rows:
        for row in rows:
            problem = _row_problem(row, expected_seq, prev_hash, source.name, anchors, text_times)
            if problem:
                chain_break = ChainBreak(source.name, row[0], row[1], problem)
                return ChainWalk(checked, expected_seq - 1, prev_hash, chain_break)
            checked += 1
            expected_seq, prev_hash = row[0] + 1, row[3]
    last_seq = expected_seq - 1
    beyond = [head for head in anchors.values() if head.seq > last_seq]
    if beyond:
        newest = max(beyond, key=lambda head: head.seq)
        problem = (
            f"chain ends at seq {last_seq} but checkpoint {newest.checkpoint} signed seq "
            f"{newest.seq}: the newest rows were removed"
        )
        return ChainWalk(
            checked, last_seq, prev_hash, ChainBreak(source.name, last_seq + 1, None, problem)
        )
    return ChainWalk(checked, last_seq, prev_hash, None)


@dataclass
class CheckpointRecord:
    number: int
    hash: str
    prev_hash: str
    signature: str
    public_key: str
    body: bytes

    def as_export(self) -> dict:
        return {
            "number": self.number,
            "hash": self.hash,
            "prev_hash": self.prev_hash,
            "signature": self.signature,
            "public_key": self.public_key,
            "body": self.body.decode(),
        }

    @classmethod
    def from_model(cls, checkpoint: Checkpoint) -> "CheckpointRecord":
        return cls(
            number=checkpoint.number,
            hash=checkpoint.hash,
            prev_hash=checkpoint.prev_hash,
            signature=checkpoint.signature,
            public_key=checkpoint.public_key,
            body=bytes(checkpoint.body),
        )

    @classmethod
    def from_export(cls, line: dict) -> "CheckpointRecord":
        return cls(
            number=int(line["number"]),
            hash=str(line["hash"]),
            prev_hash=str(line["prev_hash"]),
            signature=str(line["signature"]),
            public_key=str(line["public_key"]),
            body=str(line["body"]).encode(),
        )


def _checkpoint_open(checkpoint: CheckpointRecord, trusted: set[str]) -> tuple[str | None, dict]:
    """What is wrong with one checkpoint on its own (not its place in the sequence), or its
    signed body when it is sound."""
    if hashlib.sha256(checkpoint.body).hexdigest() != checkpoint.hash:
        return "hash does not match its body", {}
    if checkpoint.public_key not in trusted:
        return "signed by a key that is not trusted", {}
    if not signature_valid(
        public_key=checkpoint.public_key, signature=checkpoint.signature, data=checkpoint.body
    ):
        return "signature is not valid", {}
    body = orjson.loads(checkpoint.body)
    if body.get("number") != checkpoint.number or body.get("prev") != checkpoint.prev_hash:
        return "columns differ from the signed body", {}
    return None, body


def checkpoints_verify(
    checkpoints: list[CheckpointRecord],
) -> tuple[dict[str, list[SignedHead]], list[str]]:
    """Check hashes, links, signatures and keys; give the signed heads of the valid ones."""
    trusted = trusted_public_keys()
    signed: dict[str, list[SignedHead]] = {}
    problems: list[str] = []
    prev_hash = GENESIS_HASH
    for expected_number, checkpoint in enumerate(sorted(checkpoints, key=lambda c: c.number), 1):
        label = f"checkpoint {checkpoint.number}"
        if checkpoint.number != expected_number:
            problems.append(f"{label}: expected number {expected_number}; checkpoints are missing")
        problem, body = _checkpoint_open(checkpoint, trusted)
        if problem:
            problems.append(f"{label}: {problem}")
            continue
        if checkpoint.prev_hash != prev_hash:
            problems.append(f"{label}: does not link to the checkpoint before it")
        prev_hash = checkpoint.hash
        for head in body["heads"]:
            signed.setdefault(head["source"], []).append(
                SignedHead(checkpoint.number, head["seq"], head["hash"])
            )
    return signed, problems


def _compare_export(
    database: list[CheckpointRecord], exported: list[CheckpointRecord]
) -> list[str]:
    by_number = {checkpoint.number: checkpoint for checkpoint in database}
    problems = []
    for checkpoint in exported:
        stored = by_number.get(checkpoint.number)
        if stored is None:
            problems.append(
                f"checkpoint {checkpoint.number} of the export is missing from the database"
            )
        elif stored.hash != checkpoint.hash:
            problems.append(f"checkpoint {checkpoint.number} differs from the exported copy")
    return problems


def _chain_walk_job(job: tuple[Source, tuple[SignedHead, ...]]) -> ChainWalk:
    source, signed_heads = job
    return chain_walk(source, signed_heads=signed_heads)


def _walk_chains(
    sources: list[Source], signed: dict[str, list[SignedHead]], workers: int
) -> list[ChainWalk]:
    """Walk each chain, in several processes when asked (chains are independent).

    Inside a transaction the walks stay in this process: other connections could not see it.
    """
    jobs = [(source, tuple(signed.get(source.name, ()))) for source in sources]
    if workers <= 1 or len(jobs) <= 1 or connection.in_atomic_block:
        return [_chain_walk_job(job) for job in jobs]
    # Each process opens its own database connection; an inherited one must not be shared.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_chain_walk_job, jobs))


def ledger_verify(
    *,
    source_name: str | None = None,
    exported: list[CheckpointRecord] | None = None,
    workers: int = 1,
) -> VerifyReport:
    """Verify every chain (or one source's), every checkpoint, and an exported copy if given."""
    started = time.perf_counter()
    report = VerifyReport()
    database = [CheckpointRecord.from_model(c) for c in Checkpoint.objects.order_by("number")]
    signed, report.checkpoint_problems = checkpoints_verify(database)
    report.checkpoints_checked = len(database)
    if exported:
        exported_signed, exported_problems = checkpoints_verify(exported)
        report.checkpoint_problems += [f"export: {p}" for p in exported_problems]
        report.checkpoint_problems += _compare_export(database, exported)
        for name, heads in exported_signed.items():
            signed.setdefault(name, []).extend(heads)
        report.checkpoints_checked += len(exported)

    sources = Source.objects.all()
    if source_name is not None:
        sources = sources.filter(name=source_name)
    else:
        known = set(sources.values_list("name", flat=True))
        for missing in sorted(signed.keys() - known):
            report.checkpoint_problems.append(
                f"source {missing} was signed in a checkpoint but is gone"
            )
    heads = {head.source_id: head for head in ChainHead.objects.all()}
    # Longest chains first, so parallel walks end at about the same time.
    sources = sorted(sources, key=lambda s: -(heads[s.pk].seq if s.pk in heads else 0))
    for source, walk in zip(sources, _walk_chains(sources, signed, workers), strict=True):
        report.chains_checked += 1
        report.events_checked += walk.events_checked
        head = heads.get(source.pk)
        if (
            walk.broken is None
            and head is not None
            and (head.seq, head.hash) != (walk.last_seq, walk.last_hash)
        ):
            walk.broken = ChainBreak(
                source.name,
                walk.last_seq + 1,
                None,
                f"chain head says seq {head.seq} but the chain ends at seq {walk.last_seq}",
            )
        if walk.broken:
            report.breaks.append(walk.broken)
    report.seconds = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------------------------------
# One event


ANCHOR_WALK_LIMIT = 10_000  # rows re-hashed to reach a signed head; beyond, verify_audit does it


@dataclass(frozen=True)
class ProofCheck:
    name: str
    ok: bool | None  # None: not decided here (the detail says why)
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class EventProof:
    """What one event's verification found: each check, and the checkpoint that covers it."""

    source: str
    seq: int
    event_id: str
    hash: str
    prev_hash: str
    recomputed_hash: str | None
    checkpoint: int | None
    checks: tuple[ProofCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok is not False for check in self.checks)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "source": self.source,
            "seq": self.seq,
            "event_id": self.event_id,
            "hash": self.hash,
            "prev_hash": self.prev_hash,
            "recomputed_hash": self.recomputed_hash,
            "checkpoint": self.checkpoint,
            "checks": [check.as_dict() for check in self.checks],
        }


def event_verify(event: Event) -> EventProof:
    """Verify one stored event where it stands in its chain.

    Re-hashes its stored bytes with its prev_hash; checks the row before ends in that prev_hash
    (the genesis hash for seq 1) and the row after starts from its hash (or the chain head holds
    it); checks the typed columns say what the bytes say; and finds the first signed checkpoint
    whose head of this chain is at or after it, checks that checkpoint's signature, and
    re-hashes the chain from the event to the signed head when that is at most
    ANCHOR_WALK_LIMIT rows.
    """
    source = event.source
    text_times = connection.vendor == "sqlite"
    # The same rows, read the same way, as a full chain walk: seq - 1, seq and seq + 1.
    with transaction.atomic(), closing(_rows(source.pk, event.seq - 2, event.seq + 1)) as rows:
        by_seq = {row[0]: row for row in rows}
    row = by_seq[event.seq]
    _, event_id, prev_hash, stored_hash, canonical = row[:5]
    canonical = bytes(canonical)
    checks = []

    try:
        recomputed = chain_hash(prev_hash, canonical)
    except ValueError:
        recomputed = None
    checks.append(
        ProofCheck(
            "hash",
            recomputed == stored_hash,
            "SHA-256 of prev_hash and the stored bytes equals the stored hash"
            if recomputed == stored_hash
            else f"recomputed {recomputed or '(prev_hash is not hex)'} differs from the stored one",
        )
    )
    checks.append(_previous_link(event.seq, prev_hash, by_seq.get(event.seq - 1)))
    checks.append(_next_link(source, event.seq, stored_hash, by_seq.get(event.seq + 1)))

    try:
        record = canonical_loads(canonical)
    except NotCanonicalJSON:
        mismatch = "stored bytes are not JSON"
    else:
        mismatch = _column_mismatch(row, record, source.name, text_times)
    checks.append(
        ProofCheck(
            "columns",
            mismatch is None,
            mismatch or "every typed column says what the hashed bytes say",
        )
    )
    number, anchor = _anchor_check(source, event.seq, stored_hash)
    checks.append(anchor)
    return EventProof(
        source=source.name,
        seq=event.seq,
        event_id=event_id,
        hash=stored_hash,
        prev_hash=prev_hash,
        recomputed_hash=recomputed,
        checkpoint=number,
        checks=tuple(checks),
    )


def _previous_link(seq: int, prev_hash: str, previous: tuple | None) -> ProofCheck:
    if seq == 1:
        ok = prev_hash == GENESIS_HASH
        detail = (
            "the first row starts from the genesis hash"
            if ok
            else "the first row does not start from the genesis hash"
        )
        return ProofCheck("previous", ok, detail)
    if previous is None:
        return ProofCheck("previous", False, f"row {seq - 1} is missing")
    ok = previous[3] == prev_hash
    detail = (
        f"row {seq - 1} ends in this prev_hash"
        if ok
        else f"row {seq - 1} has another hash than this prev_hash"
    )
    return ProofCheck("previous", ok, detail)


def _next_link(source: Source, seq: int, stored_hash: str, following: tuple | None) -> ProofCheck:
    if following is not None:
        ok = following[2] == stored_hash
        detail = (
            f"row {seq + 1} links to this hash"
            if ok
            else f"row {seq + 1} does not link to this hash"
        )
        return ProofCheck("next", ok, detail)
    head = ChainHead.objects.filter(source=source).first()
    if head is None or head.seq < seq:
        return ProofCheck("next", False, "the chain head is behind this row")
    if head.seq > seq:
        return ProofCheck(
            "next", False, f"row {seq + 1} is missing (the chain head is at {head.seq})"
        )
    ok = head.hash == stored_hash
    detail = (
        "the newest row: the chain head holds this hash"
        if ok
        else "the chain head holds another hash for this row"
    )
    return ProofCheck("next", ok, detail)


def _anchor_check(source: Source, seq: int, stored_hash: str) -> tuple[int | None, ProofCheck]:
    """The first checkpoint whose signed head of this chain is at or after `seq`, and whether
    the chain from this row reaches that head."""
    covering = None
    for checkpoint in Checkpoint.objects.order_by("number"):
        record = CheckpointRecord.from_model(checkpoint)
        heads = orjson.loads(record.body).get("heads", [])
        head = next((h for h in heads if h.get("source") == source.name), None)
        if head is not None and head.get("seq", 0) >= seq:
            covering = (record, head)
            break
    if covering is None:
        return None, ProofCheck(
            "checkpoint", None, "no signed checkpoint covers this row yet (one is made hourly)"
        )
    record, head = covering
    label = f"checkpoint {record.number}"
    problem, _ = _checkpoint_open(record, trusted_public_keys())
    if problem:
        return record.number, ProofCheck("checkpoint", False, f"{label}: {problem}")
    signed = SignedHead(record.number, head["seq"], head["hash"])
    distance = signed.seq - seq
    if distance == 0:
        ok = signed.hash == stored_hash
        detail = (
            f"{label} signed this row's hash" if ok else f"{label} signed another hash for this row"
        )
        return record.number, ProofCheck("checkpoint", ok, detail)
    if distance > ANCHOR_WALK_LIMIT:
        return record.number, ProofCheck(
            "checkpoint",
            None,
            f"{label} signed seq {signed.seq}, {distance:,} rows on: too many to re-hash here; "
            "python manage.py verify_audit checks the whole chain",
        )
    walk = chain_walk(
        source, after_seq=seq, after_hash=stored_hash, until_seq=signed.seq, signed_heads=[signed]
    )
    if walk.broken is not None:
        return record.number, ProofCheck(
            "checkpoint",
            False,
            f"the chain to {label} breaks at seq {walk.broken.seq}: {walk.broken.problem}",
        )
    ok = (walk.last_seq, walk.last_hash) == (signed.seq, signed.hash)
    detail = (
        f"{label} is validly signed and the chain re-hashes from here to its head, seq {signed.seq}"
        if ok
        else f"the chain ends before the head {label} signed"
    )
    return record.number, ProofCheck("checkpoint", ok, detail)
