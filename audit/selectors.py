"""Reads of the ledger."""

from typing import TypedDict

from django.db.models import QuerySet, Sum

from audit.models import ChainHead, Checkpoint, Event, Source


def events_for_list() -> QuerySet[Event]:
    """Events with their source joined, newest first."""
    return Event.objects.select_related("source").order_by("-occurred_at", "-id")


class LedgerSummary(TypedDict):
    sources: int
    events: int
    checkpoints: int
    last_checkpoint_at: str | None


def ledger_summary() -> LedgerSummary:
    """Counts from the chain heads (one row per source), not a scan of the event table."""
    last = Checkpoint.objects.order_by("-number").only("created_at").first()
    return {
        "sources": Source.objects.count(),
        "events": ChainHead.objects.aggregate(total=Sum("seq"))["total"] or 0,
        "checkpoints": Checkpoint.objects.count(),
        "last_checkpoint_at": last.created_at.isoformat() if last else None,
    }
