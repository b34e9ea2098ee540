"""Tuning shared by Posture's long-running processes: gunicorn workers and Celery workers."""

import gc


def garbage_collector_settle() -> None:
    """Call once the process has loaded what it will keep for its lifetime.

    Everything loaded so far lives as long as the process: keep the garbage collector from
    walking it again and again while requests and tasks allocate thousands of short-lived
    objects (an ingest batch or a rollup range holds a few per event). A full collection of a
    loaded Django process took ~45 ms on the bench machine; with the objects frozen and a
    young generation larger than a batch, a request or task rarely collects at all
    (docs/benchmarks.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
