"""Adapters: the engines' own formats (OPA, Gatekeeper, Kyverno, OCSF) mapped onto native events.

Each engine module holds pure functions, engine document in, native event dicts out; the
events then take the native path (audit.events.validate_batch, then
audit.services.ledger_append_batch), so they share the chain, idempotency, atomic batches and
error replies. audit.adapters.services is the only module here that touches the database.
See docs/adapters.md.
"""
