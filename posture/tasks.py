"""Celery tasks of the posture domain: thin wrappers that call services."""

import logging
import math
import time

from celery import current_app, shared_task

from posture.rollups import rollups_apply, rollups_apply_all

logger = logging.getLogger(__name__)


@shared_task
def rollups_apply_task(source_id: int) -> int:
    """Enqueued after each committed ingest batch; a no-op when another run got there first."""
    return rollups_apply(source_id=source_id)


@shared_task
def rollups_catch_up_task() -> int:
    """Run by beat: counts whatever an enqueue missed (a broker that was down, say)."""
    return rollups_apply_all()


# At most one enqueue every few seconds per source from each process: the task runs no sooner
# than that later (countdown), after every batch this process committed in between, so it
# counts them too. Each run then counts many batches at once, in few transactions.
ENQUEUE_INTERVAL_SECONDS = 5.0
_last_enqueued: dict[int, float] = {}


def rollups_enqueue(*, source_id: int) -> None:
    """Ask for the source's new events to be counted. Never fails the caller: the events are
    committed, and the periodic catch-up counts them if this enqueue is lost."""
    try:
        if current_app.conf.task_always_eager:
            # The embedded default has no broker: count now, in this process.
            rollups_apply(source_id=source_id)
            return
        now = time.monotonic()
        if now - _last_enqueued.get(source_id, -math.inf) < ENQUEUE_INTERVAL_SECONDS:
            return
        rollups_apply_task.apply_async(
            args=[source_id], countdown=ENQUEUE_INTERVAL_SECONDS, retry=False
        )
        _last_enqueued[source_id] = now
    except Exception:
        logger.warning("could not count source %s into the rollups now", source_id, exc_info=True)


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def exception_notify_task(exception_id: int, kind: str) -> bool:
    """One exception notice; a redelivered or retried task sends no second mail."""
    from posture.exceptions import exception_notify

    return exception_notify(exception_id=exception_id, kind=kind)


@shared_task(acks_late=True)
def exceptions_expire_task() -> int:
    """Run by beat: mark lapsed exceptions expired and queue the expiring / expired notices."""
    from posture.exceptions import exceptions_expire, exceptions_notify_expiring

    expired = exceptions_expire()
    exceptions_notify_expiring()
    return expired
