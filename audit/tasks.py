"""Celery tasks: thin wrappers that call services."""

import logging

from celery import shared_task
from django.db import IntegrityError

from audit.models import VerificationRun
from audit.services import CheckpointRefused, checkpoint_create, verification_run
from posture.metrics import CHECKPOINTS_CREATED, LEDGER_VERIFY_FAILURES

logger = logging.getLogger(__name__)


@shared_task
def checkpoint_create_task() -> int | None:
    """Run by beat about once a minute; signs only when some chain moved."""
    try:
        checkpoint = checkpoint_create()
    except IntegrityError:
        logger.info("another process created this checkpoint number first")
        return None
    except CheckpointRefused as refused:
        logger.error("checkpoint refused: the ledger does not extend the last one: %s", refused)
        return None
    if checkpoint is None:
        return None
    CHECKPOINTS_CREATED.inc()
    return checkpoint.number


@shared_task
def ledger_verify_task(run_id: int | None = None) -> int:
    run = VerificationRun.objects.get(pk=run_id) if run_id else None
    run = verification_run(run=run)
    LEDGER_VERIFY_FAILURES.set(len(run.result.get("broken_chains", [])))
    return run.pk
