"""Signals other apps listen to; the ledger knows nothing of what is derived from it."""

from django.dispatch import Signal

# Sent after the transaction that appended events to a source's chain commits.
# Arguments: source_id.
events_appended = Signal()
