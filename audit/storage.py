"""Bulk writes of ledger rows, per database backend.

PostgreSQL gets binary COPY (the fastest path by far, see docs/benchmarks.md); SQLite gets one
executemany. Both run inside the caller's transaction, on Django's connection.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
from django.db import connection
from psycopg import postgres
from psycopg.types.string import BytesBinaryDumper

from audit.events import TYPED_FIELDS

CHAIN_COLUMNS = ("source_id", "seq", "received_at", "prev_hash", "hash", "canonical")
EVENT_COLUMNS = CHAIN_COLUMNS + TYPED_FIELDS

_PG_TYPES = {
    "source_id": "int8",
    "seq": "int8",
    "received_at": "timestamptz",
    "prev_hash": "text",
    "hash": "text",
    "canonical": "bytea",
    "event_id": "text",
    "kind": "text",
    "occurred_at": "timestamptz",
    "source_seq": "int8",
    "source_epoch": "text",
    "policy": "text",
    "rule": "text",
    "policy_version": "text",
    "outcome": "text",
    "mode": "text",
    "enforced": "bool",
    "latency_ms": "float8",
    "status": "text",
    "environment": "text",
    "service": "text",
    "namespace": "text",
    "resource": "text",
    "subject": "text",
    "action": "text",
    "severity": "text",
    "detected_at": "timestamptz",
    "reason": "text",
    "trace_id": "text",
}
_COLUMN_LIST = ", ".join(f'"{name}"' for name in EVENT_COLUMNS)
# Type oids, so that a COPY does not look every name up again.
_COPY_TYPES = [postgres.types[_PG_TYPES[name]].oid for name in EVENT_COLUMNS]


def events_insert(rows: Sequence[tuple]) -> None:
    """Insert event rows whose values follow EVENT_COLUMNS."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _copy_rows(rows)
    else:
        _executemany_rows(rows)


@contextmanager
def raw_cursor() -> Iterator[psycopg.Cursor]:
    """psycopg's own cursor on Django's connection (PostgreSQL), for what Django's cursors do
    not do (server-side binding, binary rows, COPY). Django's error wrapper is applied: a
    unique violation surfaces as django.db.IntegrityError as on every other path."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _copy_rows(rows: Sequence[tuple]) -> None:
    with raw_cursor() as cursor:
        # Django's psycopg setup dumps bytea through a Python dumper (for its Binary wrapper);
        # this COPY only sends plain bytes, which psycopg's own dumper writes in C.
        cursor.adapters.register_dumper(bytes, BytesBinaryDumper)
        with cursor.copy(f"COPY audit_event ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)


def _executemany_rows(rows: Sequence[tuple]) -> None:
    placeholders = ", ".join(["%s"] * len(EVENT_COLUMNS))
    sql = f"INSERT INTO audit_event ({_COLUMN_LIST}) VALUES ({placeholders})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.executemany(sql, [_sqlite_row(row) for row in rows])


def execute_prepared(
    sql: str, params: Sequence, *, binary: bool = False, prepare: bool | None = None
) -> list[tuple]:
    """Run one statement run again and again (each ingest batch's, the rollups' bulk writes
    and reads) and give its rows.

    On PostgreSQL the server binds the parameters, so psycopg can prepare the statement (after
    its fifth use, unless DATABASE_PREPARED_STATEMENTS is off: posture.settings) and the
    server does not parse and plan it again for every batch, ~0.2 ms a batch. Django's own
    cursors bind on the client and cannot be prepared. `binary`: the rows come in binary
    (PostgreSQL), read in C: Django's loader for text times parses each in Python (~10 µs).
    `prepare=False`: never prepared, planned for its values every time (a generic plan cannot
    hash an `= ANY(array)` of thousands of values and compares each row with all of them).
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    with raw_cursor() as cursor:
        cursor.execute(sql, params, binary=binary, prepare=prepare)
        return cursor.fetchall() if cursor.description else []


def sqlite_time(moment: datetime) -> str:
    # Django's SQLite backend stores datetimes as naive UTC text; match what the ORM writes.
    return str(moment.astimezone(UTC).replace(tzinfo=None))


def db_time(moment: datetime) -> datetime | str:
    """A time as a raw-SQL parameter for this backend."""
    return moment if connection.vendor == "postgresql" else sqlite_time(moment)


def _sqlite_row(row: tuple) -> tuple:
    return tuple(sqlite_time(value) if isinstance(value, datetime) else value for value in row)


def existing_event_ids(source_id: int, event_ids: list[str]) -> set[str]:
    """Which of these event ids the source has already stored."""
    if not event_ids:
        return set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT event_id FROM audit_event WHERE source_id = %s AND event_id = ANY(%s)",
                [source_id, event_ids],
            )
        else:
            placeholders = ", ".join(["%s"] * len(event_ids))
            cursor.execute(
                "SELECT event_id FROM audit_event "  # noqa: S608
                f"WHERE source_id = %s AND event_id IN ({placeholders})",
                [source_id, *event_ids],
            )
        return {row[0] for row in cursor.fetchall()}


CHECKPOINT_LOCK_KEY = 7_402_215  # any constant; names the advisory lock below


def checkpoint_lock() -> None:
    """Serialise checkpoint creation until the transaction ends (SQLite: writers already are)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHECKPOINT_LOCK_KEY])


def chain_head_lock(source_id: int) -> tuple[int, str, datetime | None]:
    """Lock one source's chain head until the transaction ends; give its (seq, hash, time of
    its newest append), that time None before the first.

    SQLite has no row locks: its immediate transactions (settings) already serialise writers.
    """
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT seq, hash, updated_at FROM audit_chainhead WHERE source_id = %s{lock}"  # noqa: S608
    ((seq, digest, updated_at),) = execute_prepared(sql, [source_id])
    if seq == 0:
        return seq, digest, None
    if isinstance(updated_at, str):
        updated_at = datetime.fromisoformat(updated_at)
    if updated_at.tzinfo is None:  # SQLite's: naive UTC, as Django writes it there
        updated_at = updated_at.replace(tzinfo=UTC)
    return seq, digest, updated_at.astimezone(UTC)


def commit_without_flush() -> None:
    """Let this transaction's commit return before its WAL is on disk (PostgreSQL), so that
    its locks go sooner; the caller must then call wal_flush() before it reports success."""
    if connection.vendor == "postgresql":
        execute_prepared("SELECT set_config('synchronous_commit', 'off', true)", [])


def wal_flush() -> None:
    """Return once everything committed so far on this server is on disk.

    PostgreSQL flushes the WAL at a commit when the transaction has a transaction id and
    wrote WAL itself: this one-statement transaction takes an id and writes a WAL record (a
    logical decoding message, which nothing reads), so its commit waits until the WAL up to
    it is flushed; the WAL is written in order, so every earlier commit is on disk with it.
    Run outside any transaction. Nothing to do on SQLite, whose commits this does not change
    (the embedded default keeps SQLite's WAL journal with synchronous=NORMAL: a commit
    survives the application crashing, not the machine losing power).
    """
    if connection.vendor == "postgresql":
        execute_prepared(
            "SELECT pg_current_xact_id(), pg_logical_emit_message(false, 'posture', '')", []
        )


def chain_head_move(source_id: int, *, seq: int, digest: str, at: datetime) -> None:
    execute_prepared(
        "UPDATE audit_chainhead SET seq = %s, hash = %s, updated_at = %s WHERE source_id = %s",
        [seq, digest, db_time(at), source_id],
    )
