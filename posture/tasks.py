"""Celery tasks of the posture domain: thin wrappers that call services."""

import logging

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


def rollups_enqueue(*, source_id: int) -> None:
    """Ask for the source's new events to be counted. Never fails the caller: the events are
    committed, and the periodic catch-up counts them if this enqueue is lost."""
    try:
        if current_app.conf.task_always_eager:
            # The embedded default has no broker: count now, in this process.
            rollups_apply(source_id=source_id)
        else:
            rollups_apply_task.apply_async(args=[source_id], retry=False)
    except Exception:
        logger.warning("could not count source %s into the rollups now", source_id, exc_info=True)
