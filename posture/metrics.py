"""Prometheus metrics. Under several gunicorn workers set PROMETHEUS_MULTIPROC_DIR so that
/metrics adds up every worker's counts (prometheus_client multiprocess mode)."""

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

INGEST_EVENTS = Counter(
    "posture_ingest_events_total",
    "Events received by ingest, by source and outcome (accepted, duplicate).",
    ["source", "outcome"],
)
INGEST_REJECTED_BATCHES = Counter(
    "posture_ingest_rejected_batches_total",
    "Ingest requests refused as a whole, by reason.",
    ["reason"],
)
INGEST_SECONDS = Histogram(
    "posture_ingest_request_seconds",
    "Time to validate and commit one ingest request.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CHECKPOINTS_CREATED = Counter("posture_ledger_checkpoints_total", "Signed checkpoints created.")
LEDGER_VERIFY_FAILURES = Gauge(
    "posture_ledger_verify_broken_chains",
    "Chains found broken by the latest verification (0 means intact).",
    multiprocess_mode="mostrecent",
)


def metrics_text() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry) + _database_gauges()
    return generate_latest() + _database_gauges()


def _database_gauges() -> bytes:
    """Gauges read from the database at scrape time, the same whichever process answers."""
    from posture.rollups import rollup_lag

    registry = CollectorRegistry()
    lag = rollup_lag()
    Gauge(
        "posture_rollup_lag_seconds",
        "Age of the oldest stored event not yet counted in the rollups (0 when caught up).",
        registry=registry,
    ).set(lag.seconds_behind)
    Gauge(
        "posture_rollup_lag_events",
        "Stored events not yet counted in the rollups.",
        registry=registry,
    ).set(lag.events_behind)
    return generate_latest(registry)
