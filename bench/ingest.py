"""End-to-end ingest benchmark: HTTP batches into a real gunicorn server on PostgreSQL.

What it measures, in one run on one machine (client, server and PostgreSQL share it):

1. Ingest with 8 sources sending at once: gzip-compressed JSON arrays of 500 native events
   (~640 bytes each, unique event ids) POSTed to /api/v1/events by several client processes,
   each on its own http.client connection. Events per second, request latency p50/p95/p99,
   and the CPU time per event of the server, PostgreSQL and the clients (from /proc).
2. The same into a single source (every client appends to the same chain, so the chain-head
   lock serialises the database part).
3. After each, a raw PostgreSQL COPY of the same rows, read back from audit_event with every
   stored column value (canonical bytes, hashes, typed columns), into a plain table with the
   same columns and no index, trigger or constraint: psycopg 3 binary COPY, 500 rows a
   transaction, one connection. Each ingest figure is printed next to it, with the ratio.
4. `manage.py verify_audit` over everything ingested, in events per second.
5. Rollups kept current meanwhile, as in production: each committed batch enqueues its
   source's rollup on Redis and one Celery worker (solo pool) counts it; the report gives the
   worker's CPU per event, the largest lag seen during each scenario and how long after its
   last request the rollups had caught up (`--rollups off` runs without the worker).

Each timed phase starts after a CHECKPOINT. Before anything, the run touches a few GiB of
memory once (`--prefault-gib`), because a freshly booted VM's first use of its memory is slow and
would otherwise be charged to the first scenario. The figures are compared with the bars of the
ingest issue and written to bench/results/ingest-<timestamp>.json. Failing a bar is reported,
not an error: the exit status is 0 unless something broke (a reply other than 201, a server
that does not start, a ledger that does not verify, the time limit).

The script drops and recreates its own scratch database (default `posture_bench`; the name
must contain "bench"), migrates it, creates 8 native sources with tokens, and starts
`gunicorn posture.wsgi` (sync workers, DEBUG=false, throwaway secret and signing keys); the
server is stopped at the end whatever happens.

This machine's PostgreSQL runs with autovacuum off, so audit_event is never analysed during a
run unless --analyze asks for one ANALYZE after the warm-up (what autovacuum would do on a
server that has it on); the query plans, and so the figures, can differ a lot between the two.
Other work on the machine lowers the figures: the report says how much CPU it took.

Run from the repository root (a run takes one to three minutes):

    .venv/bin/python bench/ingest.py                      # the defaults (make bench)
    .venv/bin/python bench/ingest.py --analyze --workers 3 --clients 4 --events 120000
"""

import argparse
import contextlib
import gzip
import http.client
import json
import math
import mmap
import multiprocessing
import os
import queue
import random
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
MANAGE = REPO / "manage.py"
BIN = Path(sys.executable).parent

BATCH = 500
SOURCES = 8
EVENT_SPACING = timedelta(milliseconds=7)  # between one event and the next of a scenario
COPY_TABLE = "bench_raw_copy"

# The bars of the issue.
BAR_MULTI_EPS = 40_000
BAR_SINGLE_EPS = 30_000
BAR_COPY_RATIO = 0.40
BAR_P95_MS = 100.0
BAR_VERIFY_EPS = 50_000
BAR_ROLLUP_LAG_SECONDS = 60  # "they trail the ledger by at most about a minute"
ROLLUP_BROKER = "redis://127.0.0.1:6379/13"


class BenchError(Exception):
    """Something broke: the figures of this run mean nothing."""


def step(message: str) -> None:
    print(f"-- {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Request bodies, all built before anything is timed.


@dataclass
class Request:
    source: int  # index into the tokens
    body: bytes  # gzip-compressed JSON array
    events: int
    path: str = "/api/v1/events"  # the native endpoint, or an engine adapter's


_SERVICES = ("payments", "checkout", "ledger", "search", "identity", "billing", "catalog", "notify")
_RULES = (
    ("kubernetes.admission", "require-labels"),
    ("kubernetes.admission", "disallow-privileged"),
    ("kubernetes.admission", "require-resource-limits"),
    ("kubernetes.images", "trusted-registries"),
    ("gateway.authz", "require-mtls"),
    ("ci.supply_chain", "signed-commits"),
)
_ACTIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
_SUBJECTS = (
    "system:serviceaccount:ci:deployer",
    "system:serviceaccount:argocd:argocd-application-controller",
    "user:alice@example.com",
    "user:bob@example.com",
)


def make_event(rng: random.Random, event_id: str, n: int, base: datetime) -> dict:
    """A realistic native event of about 600 bytes: mostly decisions, some violations."""
    service = rng.choice(_SERVICES)
    policy, rule = rng.choice(_RULES)
    occurred = base + EVENT_SPACING * n + timedelta(milliseconds=rng.randrange(7))
    event = {
        "event_id": event_id,
        "kind": "decision",
        "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "source_seq": n,
        "source_epoch": "boot-20261101",
        "policy": policy,
        "rule": rule,
        "policy_version": f"v1.{rng.randrange(40)}.{rng.randrange(10)}",
        "mode": "enforce",
        "service": service,
        "namespace": f"{service}-prod",
        "resource": f"apps/v1/deployments/{service}-prod/{service}-{rng.getrandbits(32):08x}",
        "subject": rng.choice(_SUBJECTS),
        "action": rng.choice(_ACTIONS),
        "trace_id": f"{rng.getrandbits(128):032x}",
        "attributes": {
            "cluster": f"eu-west-1-{rng.choice('abc')}",
            "request_uid": str(uuid.UUID(int=rng.getrandbits(128))),
            "labels": {"team": service, "tier": rng.choice(("web", "worker", "batch"))},
        },
    }
    if n % 10 == 0:
        event["kind"] = "violation"
        event["severity"] = rng.choice(("critical", "high", "medium", "low"))
        event["status"] = "open"
        event["detected_at"] = event["occurred_at"]
        event["reason"] = f"{rule}: {service} does not satisfy the policy"
    else:
        outcome = "deny" if n % 4 == 0 else "allow"
        event["outcome"] = outcome
        event["enforced"] = outcome == "deny"
        event["latency_ms"] = round(rng.uniform(0.2, 9.0), 3)
        if outcome == "deny":
            event["reason"] = f"{rule}: missing required labels on {service}"
    return event


def build_requests(
    tag: str, events: int, sources: list[int], seed: int, base: datetime
) -> list[Request]:
    """Batches of BATCH events from `base` on; request i goes to sources[i % len(sources)]."""
    rng = random.Random(seed)
    requests = []
    for index in range(math.ceil(events / BATCH)):
        size = min(BATCH, events - index * BATCH)
        batch = [
            make_event(rng, f"{tag}-{index:05d}-{k:03d}-{rng.getrandbits(40):010x}", n, base)
            for n, k in enumerate(range(size), start=index * BATCH)
        ]
        body = gzip.compress(orjson.dumps(batch), compresslevel=6)
        requests.append(Request(sources[index % len(sources)], body, size))
    return requests


# ---------------------------------------------------------------------------------------------
# The HTTP client: processes forked after the bodies are built, pulling requests off a counter.

_REQUESTS: list[Request] = []
_TOKENS: list[str] = []


def _client(port: int, counter, barrier, results) -> None:
    """One client process: send requests until none is left, then report every reply."""
    done: list[tuple] = []
    try:
        barrier.wait(timeout=60)
        _send_requests(port, counter, done)
    except BaseException as error:  # reported as a failed request; never a silent hang
        done.append((-1, 0.0, 0.0, 0, 0, repr(error)))
    finally:
        results.put(done)


def _send_requests(port: int, counter, done: list[tuple]) -> None:
    # Keep-alive where the server allows it; gunicorn's sync workers close the connection after
    # each reply, and http.client then reconnects by itself for the next request.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while True:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        if index >= len(_REQUESTS):
            break
        request = _REQUESTS[index]
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {_TOKENS[request.source]}",
        }
        started = time.perf_counter()
        try:
            connection.request("POST", request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            reply = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            done.append((index, started, time.perf_counter(), 0, 0, repr(error)))
            continue
        finished = time.perf_counter()
        accepted, problem = 0, ""
        if response.status == 201:
            accepted = orjson.loads(reply)["accepted"]
        else:
            problem = reply[:300].decode(errors="replace")
        done.append((index, started, finished, response.status, accepted, problem))
    connection.close()


@dataclass
class IngestFigures:
    name: str
    requests: int
    events: int
    accepted: int
    seconds: float
    events_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cpu_us_per_event: dict = field(default_factory=dict)
    other_cpu_share: float = 0.0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def run_clients(
    name: str, requests: list[Request], tokens: list[str], port: int, clients: int
) -> IngestFigures:
    """Send every request once with `clients` processes at once; every reply must be 201."""
    global _REQUESTS, _TOKENS
    _REQUESTS, _TOKENS = requests, tokens
    context = multiprocessing.get_context("fork")
    counter = context.Value("l", 0)
    barrier = context.Barrier(clients)
    results = context.Queue()
    processes = [
        context.Process(target=_client, args=(port, counter, barrier, results), daemon=True)
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    rows = []
    deadline = time.monotonic() + 60 + len(requests)  # generous: a second a request
    try:
        for _ in processes:
            rows += results.get(timeout=max(1.0, deadline - time.monotonic()))
    except queue.Empty:
        raise BenchError(f"{name}: the clients did not finish in time") from None
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    failed = [row for row in rows if row[3] != 201]
    if failed:
        index, _, _, status, _, problem = failed[0]
        problem = f"request {index} answered {status or 'nothing'}: {problem}"
        raise BenchError(f"{name}: {len(failed)} requests failed; {problem}")
    if len(rows) != len(requests):
        raise BenchError(f"{name}: {len(rows)} replies for {len(requests)} requests")
    events = sum(request.events for request in requests)
    accepted = sum(row[4] for row in rows)
    if accepted != events:
        raise BenchError(f"{name}: {accepted} events accepted of {events} sent")
    seconds = max(row[2] for row in rows) - min(row[1] for row in rows)
    latencies = [(row[2] - row[1]) * 1000 for row in rows]
    return IngestFigures(
        name=name,
        requests=len(rows),
        events=events,
        accepted=accepted,
        seconds=round(seconds, 3),
        events_per_second=round(accepted / seconds),
        p50_ms=round(percentile(latencies, 0.50), 1),
        p95_ms=round(percentile(latencies, 0.95), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        max_ms=round(max(latencies), 1),
    )


# ---------------------------------------------------------------------------------------------
# CPU accounting (Linux /proc): who spent the machine's CPU during a timed phase.


def process_cpu() -> dict[int, tuple[int, int, str]]:
    """CPU ticks, parent pid and command line of every process (Linux /proc; {} elsewhere)."""
    snapshot = {}
    for entry in Path("/proc").iterdir() if Path("/proc/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        snapshot[int(entry.name)] = (int(fields[11]) + int(fields[12]), int(fields[1]), cmdline)
    return snapshot


def cpu_split(
    before: dict, after: dict, server_pid: int, database: str, worker_pid: int | None = None
) -> dict[str, float]:
    """CPU seconds spent between two snapshots by the server, PostgreSQL and everything else.

    PostgreSQL counts whole (its shared background processes too) except backends serving
    other databases, which count as other work; so does any process not started by this run.
    Processes that ended during the phase are missed: the server keeps its database
    connections for the whole run (DATABASE_CONN_MAX_AGE) so that its backends are seen.
    """
    ours = {os.getpid()}
    for pid, (_, ppid, _) in sorted(after.items()):
        if ppid in ours or pid == server_pid:
            ours.add(pid)
    server = {server_pid} | {pid for pid, (_, ppid, _) in after.items() if ppid == server_pid}
    worker = {worker_pid} | {pid for pid, (_, ppid, _) in after.items() if ppid == worker_pid}
    split = {"server": 0.0, "postgresql": 0.0, "rollups": 0.0, "other": 0.0}
    tick = os.sysconf("SC_CLK_TCK")
    for pid, (ticks, _, cmdline) in after.items():
        if pid in before and before[pid][2] == cmdline:
            seconds = (ticks - before[pid][0]) / tick
        else:  # started during the phase
            seconds = ticks / tick
        if pid in server:
            split["server"] += seconds
        elif worker_pid is not None and pid in worker:
            split["rollups"] += seconds
        elif cmdline.startswith("postgres"):
            backend = "(" in cmdline or "[local]" in cmdline
            split["other" if backend and f" {database} " not in cmdline else "postgresql"] += (
                seconds
            )
        elif pid not in ours:
            split["other"] += seconds
    return {key: round(value, 2) for key, value in split.items()}


def cpu_busy(seconds: float = 2.0) -> float | None:
    """The share of all CPUs busy over `seconds` (Linux /proc/stat), to spot a machine in use."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total_before, idle_before = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return round(1 - (idle_after - idle_before) / total, 3) if total else None


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the client processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------
# Database, Django commands and the server.


def memory_prefault(gib: float) -> float:
    """Touch `gib` GiB of memory once and hand it back; the seconds it took.

    A virtual machine's memory costs a fault in the hypervisor the first time the guest
    touches it: here 4 GiB took 9.7 s the first time and 3.5 s the third. Right after a boot,
    the first timed scenario would pay that for PostgreSQL's page cache (one run right after
    boot: 8 sources at 33,643 events/s, PostgreSQL 19.5 µs an event; the next runs ~60,000 and
    10.5). The kernel gives freed pages out again, so the run then mostly finds touched ones.
    """
    available = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    size = int(min(gib * 2**30, available / 2)) // mmap.PAGESIZE * mmap.PAGESIZE
    if size <= 0:
        return 0.0
    started = time.perf_counter()
    with mmap.mmap(-1, size) as memory:
        for offset in range(0, size, mmap.PAGESIZE):
            memory[offset] = 1
    return round(time.perf_counter() - started, 1)


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def recreate_database(url: str) -> None:
    name = database_name(url)
    if "bench" not in name:
        raise BenchError(f"refusing to drop database {name!r}: its name must contain 'bench'")
    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        database = sql.Identifier(name)
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(database))


def manage(env: dict, *args: str, timeout: float = 300) -> str:
    completed = subprocess.run(
        [sys.executable, str(MANAGE), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        output = completed.stdout + completed.stderr
        raise BenchError(f"manage.py {' '.join(args)} failed:\n{output}")
    return completed.stdout


_CREATE_SOURCES = """
import json
from audit.services import source_create, source_token_create
tokens = []
for n in range({count}):
    source = source_create(name=f"bench-{{n + 1}}", kind="native", environment="prod")
    tokens.append(source_token_create(source=source, label="bench")[1])
print(json.dumps(tokens))
"""


def create_sources(env: dict, count: int) -> list[str]:
    """Native sources bench-1..bench-N and one token each (one Django start, not N)."""
    out = manage(env, "shell", "--no-imports", "-c", _CREATE_SOURCES.format(count=count))
    return json.loads(out.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(env: dict, workers: int, port: int, log_path: Path):
    """A running `gunicorn posture.wsgi`, stopped (its whole process group) on the way out."""
    command = [
        str(BIN / "gunicorn"),
        "posture.wsgi",
        "-w", str(workers),
        "-b", f"127.0.0.1:{port}",
        "--worker-class", "sync",
        "--timeout", "120",
        "--graceful-timeout", "5",
        "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_healthy(port, server, log_path)
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)


def wait_healthy(port: int, server: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"gunicorn exited with {server.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
                if reply.status == 200 and orjson.loads(reply.read()).get("status") == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{tail(log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# The raw COPY baseline.


@dataclass
class CopyFigures:
    rows: int
    seconds: float
    rows_per_second: float


def checkpoint(url: str) -> None:
    """Start each timed phase from the same place: no dirty pages of the previous one."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CHECKPOINT")


def raw_copy(url: str, tag: str) -> CopyFigures:
    """COPY the stored rows of one scenario into a plain table, BATCH rows a transaction."""
    table = sql.Identifier(COPY_TABLE)
    with psycopg.connect(url, autocommit=True) as connection:
        columns = connection.execute(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = 'audit_event'::regclass "
            "AND attnum > 0 AND NOT attisdropped AND attname <> 'id' ORDER BY attnum"
        ).fetchall()
        names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
        select = sql.SQL("SELECT {} FROM audit_event WHERE event_id LIKE %s ORDER BY id")
        with connection.cursor(binary=True) as cursor:
            rows = cursor.execute(select.format(names), [f"{tag}-%"]).fetchall()

        # The same columns and types as audit_event; no id, index, trigger, default or NOT NULL.
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        connection.execute(sql.SQL("CREATE TABLE {} (LIKE audit_event)").format(table))
        connection.execute(sql.SQL("ALTER TABLE {} DROP COLUMN id").format(table))
        for name, _ in columns:
            not_null = sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL")
            connection.execute(not_null.format(table, sql.Identifier(name)))

        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, names)
        types = [type_oid for _, type_oid in columns]
        checkpoint(url)
        connection.autocommit = False
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            with connection.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(types)
                for row in rows[start : start + BATCH]:
                    copy.write_row(row)
            connection.commit()
        seconds = time.perf_counter() - started
        connection.autocommit = True

        copied = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
        if copied[0] != len(rows):
            raise BenchError(f"the raw COPY table holds {copied[0]} rows of {len(rows)}")
        connection.execute(sql.SQL("DROP TABLE {}").format(table))
    return CopyFigures(len(rows), round(seconds, 3), round(len(rows) / seconds))


# ---------------------------------------------------------------------------------------------
# The run.


@dataclass
class Results:
    started_at: str
    settings: dict
    machine: dict
    code: dict
    scenarios: list = field(default_factory=list)
    verify: dict = field(default_factory=dict)
    bars: list = field(default_factory=list)


def postgresql_settings(url: str) -> dict:
    """The server settings that change these figures most."""
    names = ["server_version", "shared_buffers", "synchronous_commit", "fsync", "autovacuum"]
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", [names]
        )
        return {f"postgresql_{name}": value for name, value in rows}


def server_env(url: str, keys_dir: Path) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "POSTURE_SIGNING_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DATABASE_URL=url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        POSTURE_SIGNING_KEY_FILE=str(keys_dir / "signing-key.pem"),
        POSTURE_VAR_DIR=str(keys_dir / "var"),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        PROMETHEUS_MULTIPROC_DIR=str(keys_dir / "prometheus"),
        # One PostgreSQL backend per worker for the whole run (the default of 60 s would only
        # add a reconnection a minute), so that the CPU accounting sees the same backends.
        DATABASE_CONN_MAX_AGE="3600",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def git_state() -> dict:
    """Which code was measured: the commit, and the files changed since (outside bench/)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=30
        ).stdout

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "changed_files": [path for path in changed if not path.startswith("bench/")],
    }


def ingest_scenario(
    args: argparse.Namespace,
    name: str,
    tag: str,
    requests: list[Request],
    tokens: list[str],
    port: int,
    server: subprocess.Popen,
    worker: subprocess.Popen | None,
) -> dict:
    """One timed ingest scenario, its CPU split, and the raw COPY of the rows it stored."""
    step(f"ingest, {name}: {len(requests)} requests, {args.clients} client processes")
    checkpoint(args.database_url)
    before, clients_before = process_cpu(), children_cpu()
    with LagSampler(args.database_url) as lag:
        figures = run_clients(name, requests, tokens, port, args.clients)
        if worker is not None:
            caught_up = rollups_caught_up(args.database_url, worker)
    worker_pid = worker.pid if worker is not None else None
    cpu = cpu_split(before, process_cpu(), server.pid, database_name(args.database_url), worker_pid)
    cpu["clients"] = children_cpu() - clients_before
    rollups = None
    if worker is not None:
        rollups = {"max_lag_seconds": lag.max_seconds, "caught_up_after_seconds": caught_up}
        print(
            f"  rollups: at most {lag.max_seconds:.1f} s behind; caught up "
            f"{caught_up:.1f} s after the last request"
        )
    figures.cpu_us_per_event = {
        key: round(seconds / figures.accepted * 1e6, 1) for key, seconds in cpu.items()
    }
    figures.other_cpu_share = round(cpu["other"] / figures.seconds / (os.cpu_count() or 1), 3)
    print(f"  {figures.events_per_second:,} events/s, p95 {figures.p95_ms} ms")
    step(f"raw COPY of the same {figures.accepted:,} rows")
    copy = raw_copy(args.database_url, tag)
    print(f"  {copy.rows_per_second:,} rows/s")
    ratio = round(figures.events_per_second / copy.rows_per_second, 3)
    return {
        **asdict(figures),
        "raw_copy": asdict(copy),
        "ratio_to_copy": ratio,
        "rollups": rollups,
    }


_LAG_SQL = """
SELECT COALESCE(SUM(h.seq - COALESCE(c.seq, 0)), 0),
       EXTRACT(EPOCH FROM now() - MIN(e.received_at))
FROM audit_chainhead h
LEFT JOIN posture_rollupcursor c ON c.source_id = h.source_id
LEFT JOIN audit_event e ON e.source_id = h.source_id AND e.seq = COALESCE(c.seq, 0) + 1
"""


def rollup_lag(url: str) -> tuple[int, float]:
    """(events not yet counted, age in seconds of the oldest of them), as /metrics reports."""
    with psycopg.connect(url, autocommit=True) as connection:
        behind, seconds = connection.execute(_LAG_SQL).fetchone()
    return int(behind), float(seconds or 0.0)


class LagSampler:
    """Samples the rollup lag every half second in a thread while a scenario runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.max_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.max_seconds = max(self.max_seconds, rollup_lag(self.url)[1])

    def __enter__(self) -> "LagSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def rollups_caught_up(url: str, worker: subprocess.Popen, timeout: float = 300) -> float:
    """Seconds until every stored event is counted in the rollups."""
    started = time.monotonic()
    while rollup_lag(url)[0] > 0:
        if worker.poll() is not None:
            raise BenchError("the Celery worker died")
        if time.monotonic() - started > timeout:
            raise BenchError(f"the rollups were still behind after {timeout:.0f} s")
        time.sleep(0.2)
    return round(time.monotonic() - started, 1)


@contextmanager
def celery_worker(env: dict, log_path: Path):
    """One Celery worker (solo pool) on ROLLUP_BROKER, its queue purged first."""
    command = [sys.executable, "-m", "celery", "-A", "posture", "worker", "--pool", "solo"]
    manage_env = {**env, "CELERY_BROKER_URL": ROLLUP_BROKER}
    purge = [sys.executable, "-m", "celery", "-A", "posture", "purge", "-f"]
    if subprocess.run(purge, cwd=REPO, env=manage_env, capture_output=True).returncode != 0:
        raise BenchError(f"cannot reach Redis at {ROLLUP_BROKER} (or use --rollups off)")
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*command, "--loglevel", "WARNING"],
            cwd=REPO,
            env=manage_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield worker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)


def verify_ledger(env: dict, expected: int) -> dict:
    step("manage.py verify_audit")
    report = json.loads(manage(env, "verify_audit", "--json", timeout=600))
    if not report["ok"]:
        raise BenchError(f"the ledger does not verify: {report}")
    if report["events_checked"] != expected:
        checked = report["events_checked"]
        raise BenchError(f"verify checked {checked} events; {expected} were sent")
    return {
        "events": report["events_checked"],
        "seconds": report["seconds"],
        "events_per_second": report["events_per_second"],
    }


def run(args: argparse.Namespace) -> Results:
    results = Results(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        settings={
            "events_per_scenario": args.events,
            "batch": BATCH,
            "sources": SOURCES,
            "gunicorn_workers": args.workers,
            "client_processes": args.clients,
            "database": database_name(args.database_url),
            "analyze_after_warmup": args.analyze,
            "rollups": args.rollups,
        },
        machine={"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        code=git_state(),
    )
    busy = cpu_busy()
    results.machine["cpu_busy_before_start"] = busy
    if busy is not None and busy > 0.10:
        print(f"!! {busy:.0%} of the CPUs were busy before the start: the figures will be low")

    step("building request bodies")
    warmup_events = BATCH * max(2 * args.clients, SOURCES)
    # Each scenario's events happened after the previous one's and the last ends about now,
    # as enforcement points send them: a ledger's time index grows at its end.
    end = datetime.now(UTC).replace(microsecond=0)
    single_base = end - EVENT_SPACING * args.events
    multi_base = single_base - EVENT_SPACING * args.events
    warmup_base = multi_base - EVENT_SPACING * warmup_events
    multi = build_requests("m", args.events, list(range(SOURCES)), 1, multi_base)
    single = build_requests("s", args.events, [0], 2, single_base)
    warmup = build_requests("w", warmup_events, list(range(SOURCES)), 3, warmup_base)
    body_bytes = sum(len(r.body) for r in multi) / len(multi)
    event_bytes = len(orjson.dumps(orjson.loads(gzip.decompress(multi[0].body))[1]))
    results.settings.update(gzip_body_bytes=round(body_bytes), event_json_bytes=event_bytes)
    count = len(multi) + len(single)
    print(f"  {count} bodies of ~{body_bytes / 1024:.0f} KiB gzip, ~{event_bytes} B an event")
    if args.prefault_gib > 0:
        step(f"touching {args.prefault_gib:g} GiB of memory once (first use is slow on a VM)")
        results.machine["prefault_seconds"] = seconds = memory_prefault(args.prefault_gib)
        print(f"  {seconds} s")

    with tempfile.TemporaryDirectory(prefix="posture-bench-") as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "prometheus").mkdir()
        env = server_env(args.database_url, tmp_dir)
        step(f"recreating database {database_name(args.database_url)}")
        recreate_database(args.database_url)
        results.machine.update(postgresql_settings(args.database_url))
        # DEBUG=false refuses to start without the key, so this one command runs with DEBUG on.
        manage({**env, "DEBUG": "true"}, "generate_signing_key", env["POSTURE_SIGNING_KEY_FILE"])
        manage(env, "migrate", "--no-input")
        tokens = create_sources(env, SOURCES)
        port = free_port()
        # With a broker the server enqueues rollups (without one it would count them inline,
        # the embedded default); `--rollups off` leaves the queue without a worker.
        env["CELERY_BROKER_URL"] = ROLLUP_BROKER
        if args.rollups == "worker":
            step(f"starting a Celery worker for the rollups on {ROLLUP_BROKER}")
            worker_context = celery_worker(env, tmp_dir / "worker.log")
        else:
            worker_context = contextlib.nullcontext()
        step(f"starting gunicorn: {args.workers} sync workers on 127.0.0.1:{port}")
        with (
            worker_context as worker,
            gunicorn(env, args.workers, port, tmp_dir / "gunicorn.log") as server,
        ):
            run_clients("warm-up", warmup, tokens, port, args.clients)
            if args.analyze:
                step("ANALYZE audit_event (what autovacuum would do)")
                with psycopg.connect(args.database_url, autocommit=True) as connection:
                    connection.execute("ANALYZE audit_event")
            for tag, name, requests in (("m", "8 sources", multi), ("s", "1 source", single)):
                results.scenarios.append(
                    ingest_scenario(args, name, tag, requests, tokens, port, server, worker)
                )
            if server.poll() is not None:
                raise BenchError(f"gunicorn died during the run:\n{tail(tmp_dir / 'gunicorn.log')}")
        expected = sum(r.events for r in multi + single + warmup)
        results.verify = verify_ledger(env, expected)
    results.bars = bars(results)
    return results


# ---------------------------------------------------------------------------------------------
# The report.


def bars(results: Results) -> list[dict]:
    multi, single = results.scenarios
    checks = [
        ("8 sources at once, events/s", multi["events_per_second"], ">=", BAR_MULTI_EPS),
        ("1 source, events/s", single["events_per_second"], ">=", BAR_SINGLE_EPS),
        ("8 sources / raw COPY", multi["ratio_to_copy"], ">=", BAR_COPY_RATIO),
        ("1 source / raw COPY", single["ratio_to_copy"], ">=", BAR_COPY_RATIO),
        ("8 sources, p95 ms a request", multi["p95_ms"], "<", BAR_P95_MS),
        ("1 source, p95 ms a request", single["p95_ms"], "<", BAR_P95_MS),
        ("verify_audit, events/s", results.verify["events_per_second"], ">=", BAR_VERIFY_EPS),
    ]
    for scenario in results.scenarios:
        if scenario["rollups"] is not None:
            checks.append(
                (
                    f"{scenario['name']}, rollup lag s",
                    scenario["rollups"]["max_lag_seconds"],
                    "<",
                    BAR_ROLLUP_LAG_SECONDS,
                )
            )
    return [
        {
            "bar": label,
            "value": value,
            "target": f"{op} {target}",
            "pass": value >= target if op == ">=" else value < target,
        }
        for label, value, op, target in checks
    ]


def print_report(results: Results) -> None:
    s = results.settings
    code = results.code
    changed = f", {len(code['changed_files'])} files changed since" if code["changed_files"] else ""
    print(f"\nCode: commit {code['commit']}{changed}")
    print(
        f"Ingest: {s['gunicorn_workers']} gunicorn sync workers, {s['client_processes']} client "
        f"processes, {s['events_per_scenario']:,} events a scenario in batches of {s['batch']} "
        f"(~{s['event_json_bytes']} B an event), {results.machine['cpus']} CPUs"
    )
    m = results.machine
    print(
        f"PostgreSQL {m['postgresql_server_version']}, shared_buffers "
        f"{m['postgresql_shared_buffers']}, autovacuum {m['postgresql_autovacuum']}, "
        f"ANALYZE after warm-up: {'yes' if s['analyze_after_warmup'] else 'no'}"
    )
    if m.get("cpu_busy_before_start") is not None:
        print(f"CPUs busy before the start (other work): {m['cpu_busy_before_start']:.0%}")
    print()
    header = f"{'scenario':<11}{'events/s':>10}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
    header += f"{'raw COPY rows/s':>17}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for sc in results.scenarios:
        print(
            f"{sc['name']:<11}{sc['events_per_second']:>10,}{sc['p50_ms']:>8.1f}{sc['p95_ms']:>8.1f}"
            f"{sc['p99_ms']:>8.1f}{sc['raw_copy']['rows_per_second']:>17,}{sc['ratio_to_copy']:>7.0%}"
        )
    print("\nCPU µs an event: gunicorn, PostgreSQL, rollup worker, clients; other work meanwhile")
    for sc in results.scenarios:
        cpu = sc["cpu_us_per_event"]
        print(
            f"{sc['name']:<11}server {cpu['server']:5.1f}  postgresql {cpu['postgresql']:5.1f}  "
            f"rollups {cpu['rollups']:4.1f}  clients {cpu['clients']:4.1f}  "
            f"other {cpu['other']:5.1f} ({sc['other_cpu_share']:.0%} of the CPUs)"
        )
    verify = results.verify
    print(
        f"verify_audit: {verify['events']:,} events in {verify['seconds']} s, "
        f"{verify['events_per_second']:,} events/s\n"
    )
    for bar in results.bars:
        op, target = bar["target"].split()
        if "COPY" in bar["bar"]:
            value, target = f"{bar['value']:.0%}", f"{float(target):.0%}"
        else:
            value, target = f"{bar['value']:,}", f"{float(target):,.0f}"
        verdict = "PASS" if bar["pass"] else "FAIL"
        print(f"{verdict}  {bar['bar']:<30}{value:>10}   (bar {op} {target})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/posture_bench",
        help="scratch database, dropped and recreated (its name must contain 'bench')",
    )
    parser.add_argument("--events", type=int, default=240_000, help="events per scenario")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=3, help="client processes sending at once")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE audit_event after the warm-up, as autovacuum would (it may be off here)",
    )
    parser.add_argument(
        "--rollups",
        choices=["worker", "off"],
        default="worker",
        help="keep rollups current with a Celery worker on Redis, as in production (default)",
    )
    parser.add_argument(
        "--prefault-gib",
        type=float,
        default=4,
        help="touch this much memory before the run, so that a freshly booted VM's first use of "
        "its memory is not timed (0: do not)",
    )
    parser.add_argument("--time-limit", type=int, default=900, help="abort after this many seconds")
    args = parser.parse_args()
    if args.events < BATCH * SOURCES or args.workers < 1 or args.clients < 1:
        parser.error(f"need --events >= {BATCH * SOURCES}, --workers >= 1 and --clients >= 1")

    def out_of_time(signum, frame):
        raise BenchError(f"time limit of {args.time_limit} s reached")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    signal.alarm(args.time_limit)
    try:
        results = run(args)
    except (BenchError, subprocess.TimeoutExpired, psycopg.Error) as error:
        print(f"\nbenchmark broke: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    print_report(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_bytes(orjson.dumps(asdict(results), option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
