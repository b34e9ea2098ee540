"""OPA decision-log ingest against native ingest, over HTTP, in the same run.

What it measures, in one run on one machine (client, server and PostgreSQL share it): the
same number of decisions (about 1 KiB each as OPA sends them) POSTed gzip-compressed in
batches of 500 by several client processes to a real gunicorn server, first as native events
to /api/v1/events, then as OPA decision-log events to /api/v1/ingest/opa/logs (what OPA's
decision-log plugin sends), each into 4 sources. Events per second, request latency, and the
ratio OPA / native, against the bar of the adapters issue: at least half the native rate. The
native events carry the same fields the OPA adapter derives (policy, rule, outcome, latency,
trace id, the original decision under attributes), so both paths store the same amount.

The machinery (scratch database, gunicorn, clients, CPU accounting, rollup worker) is
bench/ingest.py's. Run from the repository root (about two minutes):

    .venv/bin/python bench/opa.py                    # make bench-opa
    .venv/bin/python bench/opa.py --events 40000
"""

import argparse
import gzip
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as machinery

SOURCES = 4
BAR_RATIO = 0.5
_PATHS = (
    "kubernetes/admission/main",
    "http/example/authz/allow",
    "gateway/authz/deny",
    "ci/gate/violations",
)
_NAMESPACES = ("payments", "checkout", "ledger", "search", "identity", "billing")


def opa_decision(rng: random.Random, n: int, base: datetime) -> dict:
    """An OPA decision-log event of about 1 KiB, as the decision-log plugin sends it."""
    namespace = rng.choice(_NAMESPACES)
    path = _PATHS[n % len(_PATHS)]
    denied = n % 5 == 0
    result: object = {"allowed": not denied, "reasons": ["label team is missing"] if denied else []}
    if path.endswith("/allow"):
        result = not denied
    return {
        "labels": {
            "app": "opa",
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "version": "1.4.2",
        },
        "decision_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "bundles": {"authz": {"revision": f"rev-{rng.randrange(40)}"}},
        "path": path,
        "input": {
            "request": {
                "uid": str(uuid.UUID(int=rng.getrandbits(128))),
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "namespace": namespace,
                "operation": rng.choice(("CREATE", "UPDATE")),
                "name": f"{namespace}-{rng.getrandbits(32):08x}",
                "userInfo": {
                    "username": "system:serviceaccount:ci:deployer",
                    "groups": ["system:serviceaccounts", "system:authenticated"],
                },
                "object": {
                    "metadata": {
                        "labels": {"app": namespace, "tier": rng.choice(("web", "worker"))},
                        "annotations": {"deploy.example.com/commit": f"{rng.getrandbits(64):016x}"},
                    },
                    "spec": {"replicas": rng.randrange(1, 6)},
                },
            }
        },
        "result": result,
        "requested_by": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}:{rng.randrange(65535)}",
        "timestamp": (base + timedelta(milliseconds=n * 7)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "req_id": n,
        "trace_id": f"{rng.getrandbits(128):032x}",
        "metrics": {
            "timer_rego_query_eval_ns": rng.randrange(100_000, 5_000_000),
            "timer_server_handler_ns": rng.randrange(200_000, 9_000_000),
        },
    }


def native_decision(opa: dict) -> dict:
    """The native event carrying what the adapter derives from `opa`, original included."""
    denied = opa["result"] is False or (
        isinstance(opa["result"], dict) and not opa["result"]["allowed"]
    )
    policy, _, rule = opa["path"].rpartition("/")
    return {
        "event_id": opa["decision_id"],
        "kind": "decision",
        "occurred_at": opa["timestamp"],
        "source_seq": opa["req_id"],
        "policy": policy.replace("/", "."),
        "rule": rule,
        "policy_version": opa["bundles"]["authz"]["revision"],
        "outcome": "deny" if denied else "allow",
        "mode": "enforce",
        "enforced": True,
        "latency_ms": opa["metrics"]["timer_server_handler_ns"] / 1e6,
        "namespace": opa["input"]["request"]["namespace"],
        "resource": opa["input"]["request"]["name"],
        "subject": opa["input"]["request"]["userInfo"]["username"],
        "action": opa["input"]["request"]["operation"],
        "trace_id": opa["trace_id"],
        "attributes": {"opa": opa},
    }


def build(events: int, seed: int) -> tuple[list, list, int, int]:
    """The same decisions as native and as OPA requests; and their average JSON sizes."""
    rng = random.Random(seed)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    native, opa = [], []
    opa_bytes = native_bytes = 0
    for index in range(math.ceil(events / machinery.BATCH)):
        size = min(machinery.BATCH, events - index * machinery.BATCH)
        decisions = [opa_decision(rng, index * machinery.BATCH + k, base) for k in range(size)]
        as_native = [native_decision(decision) for decision in decisions]
        opa_json, native_json = orjson.dumps(decisions), orjson.dumps(as_native)
        opa_bytes += len(opa_json)
        native_bytes += len(native_json)
        source = index % SOURCES
        native.append(machinery.Request(source, gzip.compress(native_json), size))
        opa.append(
            machinery.Request(
                SOURCES + source, gzip.compress(opa_json), size, "/api/v1/ingest/opa/logs"
            )
        )
    return native, opa, opa_bytes // events, native_bytes // events


_CREATE_SOURCES = """
import json
from audit.services import source_create, source_token_create
tokens = []
for kind in ("native", "opa"):
    for n in range({count}):
        source = source_create(name=f"{{kind}}-{{n + 1}}", kind=kind, environment="prod")
        tokens.append(source_token_create(source=source, label="bench")[1])
print(json.dumps(tokens))
"""


def run(args: argparse.Namespace) -> dict:
    machinery.step("building request bodies")
    native, opa, opa_size, native_size = build(args.events, seed=7)
    sizes = f"~{opa_size} B an OPA event, ~{native_size} B native"
    print(f"  {len(native)} + {len(opa)} requests; {sizes}")
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "events_per_scenario": args.events,
            "sources_per_scenario": SOURCES,
            "batch": machinery.BATCH,
            "gunicorn_workers": args.workers,
            "client_processes": args.clients,
            "opa_event_json_bytes": opa_size,
            "native_event_json_bytes": native_size,
        },
        "code": machinery.git_state(),
        "scenarios": [],
    }
    with tempfile.TemporaryDirectory(prefix="posture-bench-opa-") as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "prometheus").mkdir()
        env = machinery.server_env(args.database_url, tmp_dir)
        machinery.step(f"recreating database {machinery.database_name(args.database_url)}")
        machinery.recreate_database(args.database_url)
        machinery.manage(
            {**env, "DEBUG": "true"}, "generate_signing_key", env["POSTURE_SIGNING_KEY_FILE"]
        )
        machinery.manage(env, "migrate", "--no-input")
        out = machinery.manage(
            env, "shell", "--no-imports", "-c", _CREATE_SOURCES.format(count=SOURCES)
        )
        tokens = json.loads(out.strip().splitlines()[-1])
        env["CELERY_BROKER_URL"] = machinery.ROLLUP_BROKER
        port = machinery.free_port()
        machinery.step("starting a Celery worker for the rollups and gunicorn")
        with (
            machinery.celery_worker(env, tmp_dir / "worker.log") as worker,
            machinery.gunicorn(env, args.workers, port, tmp_dir / "gunicorn.log") as server,
        ):
            warm = native[: 2 * args.clients]
            machinery.run_clients("warm-up", warm, tokens, port, args.clients)
            for name, requests in (("native", native[2 * args.clients :]), ("opa", opa)):
                machinery.step(f"{name}: {len(requests)} requests, {args.clients} clients")
                machinery.checkpoint(args.database_url)
                before = machinery.process_cpu()
                figures = machinery.run_clients(name, requests, tokens, port, args.clients)
                machinery.rollups_caught_up(args.database_url, worker)
                cpu = machinery.cpu_split(
                    before,
                    machinery.process_cpu(),
                    server.pid,
                    machinery.database_name(args.database_url),
                    worker.pid,
                )
                figures.cpu_us_per_event = {
                    key: round(seconds / figures.accepted * 1e6, 1) for key, seconds in cpu.items()
                }
                print(f"  {figures.events_per_second:,} events/s, p95 {figures.p95_ms} ms")
                results["scenarios"].append(asdict(figures))
    native_eps = results["scenarios"][0]["events_per_second"]
    opa_eps = results["scenarios"][1]["events_per_second"]
    results["ratio"] = round(opa_eps / native_eps, 3)
    results["pass"] = results["ratio"] >= BAR_RATIO
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/posture_opa_bench",
        help="scratch database, dropped and recreated (its name must contain 'bench')",
    )
    parser.add_argument("--events", type=int, default=120_000, help="decisions per scenario")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=3, help="client processes sending at once")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    try:
        results = run(args)
    except (machinery.BenchError, subprocess.TimeoutExpired, psycopg.Error) as error:
        print(f"\nbenchmark broke: {error}", file=sys.stderr)
        return 1
    print()
    for scenario in results["scenarios"]:
        cpu = scenario["cpu_us_per_event"]
        print(
            f"{scenario['name']:<7}{scenario['events_per_second']:>10,} events/s  "
            f"p95 {scenario['p95_ms']:6.1f} ms  server {cpu['server']:5.1f} µs  "
            f"postgresql {cpu['postgresql']:5.1f} µs  rollups {cpu['rollups']:4.1f} µs an event"
        )
    verdict = "PASS" if results["pass"] else "FAIL"
    print(f"\n{verdict}  OPA / native {results['ratio']:.0%}   (bar >= {BAR_RATIO:.0%})")
    machinery.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = machinery.RESULTS_DIR / f"opa-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path.relative_to(machinery.REPO)}")
    return 0


if __name__ == "__main__":
    os.chdir(machinery.REPO)
    sys.exit(main())
