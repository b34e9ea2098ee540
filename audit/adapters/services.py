"""Adapter ingest: read an engine's request, map it, and append it like a native batch.

Every path ends in audit.services.batch_records and ledger_append_batch, as native ingest does, so
adapter events share the chain, idempotency by (source, event_id), atomic batches and the
refusal format of native ingest. Each function raises IngestRejected (nothing stored) for a
request it cannot take whole.
"""

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import orjson
from django.conf import settings
from django.db import transaction

from audit import storage
from audit.adapters import gatekeeper, kyverno, ocsf, opa
from audit.adapters.common import Mapped, RecordErrors, now_utc
from audit.adapters.config import opa_rules, validate_adapter_config
from audit.adapters.decode import as_records, decode_document
from audit.adapters.snapshots import Observation, observation_events
from audit.adapters.state import scope_state_read
from audit.ingest import IngestRejected
from audit.models import Source
from audit.services import AppendResult, batch_records, ledger_append_batch

# One report or constraint list can hold many results; this bounds one transaction.
EVENTS_PER_REQUEST_FACTOR = 20
MAX_ERRORS_SHOWN = 100
T = TypeVar("T")


def source_adapter_config_set(*, source: Source, config: dict) -> Source:
    """Replace a source's adapter configuration; ValidationError lists what is wrong."""
    validate_adapter_config(config)
    source.adapter_config = config
    source.save(update_fields=["adapter_config"])
    return source


def ingest_opa_logs(
    *, source: Source, body: bytes, content_type: str, content_encoding: str
) -> AppendResult:
    """A decision-log chunk from OPA's decision_logs plugin (a gzip JSON array)."""
    records = _records(_decode(body, content_type, content_encoding))
    rules = opa_rules(source.adapter_config)
    mapped = _mapped(lambda: opa.decision_events(records, rules=rules))
    return _append(source, mapped)


def ingest_opa_status(
    *, source: Source, body: bytes, content_type: str, content_encoding: str
) -> AppendResult:
    """A status update from OPA's status plugin: heartbeat, deployments, drop counters."""
    document = _decode(body, content_type, content_encoding)
    received_at = now_utc()
    mapped = _mapped(lambda: opa.status_events(document, received_at=received_at))
    return _append(source, mapped)


def ingest_gatekeeper(
    *, source: Source, body: bytes, content_type: str, content_encoding: str
) -> AppendResult:
    """Constraints (kubectl get constraints -o json), audit log lines, export messages."""
    document = _decode(body, content_type, content_encoding, json_lines=True)
    records = as_records(document)
    received_at = now_utc()
    batch = _mapped(lambda: gatekeeper.parse(records, received_at=received_at))
    return _append_with_snapshots(source, batch.events, batch.observations)


def ingest_kyverno(
    *, source: Source, body: bytes, content_type: str, content_encoding: str
) -> AppendResult:
    """PolicyReports / ClusterPolicyReports (alone or in a List), or a Policy Reporter post."""
    records = as_records(_decode(body, content_type, content_encoding))
    received_at = now_utc()
    batch = _mapped(lambda: kyverno.parse(records, received_at=received_at))
    return _append_with_snapshots(source, batch.events, batch.observations)


def ingest_ocsf(
    *, source: Source, body: bytes, content_type: str, content_encoding: str
) -> AppendResult:
    """OCSF Detection and Compliance Findings: a JSON array (Prowler's json-ocsf) or one."""
    records = _records(_decode(body, content_type, content_encoding, json_lines=True))
    mapped = _mapped(lambda: ocsf.finding_events(records))
    return _append(source, mapped)


def _decode(body: bytes, content_type: str, content_encoding: str, *, json_lines=False):
    return decode_document(
        body,
        content_type=content_type,
        content_encoding=content_encoding,
        max_bytes=settings.POSTURE_INGEST_MAX_BYTES,
        json_lines=json_lines,
    )


def _records(document: object) -> list:
    """Records that map one to one onto events, within the native batch limit."""
    records = as_records(document)
    limit = settings.POSTURE_INGEST_MAX_EVENTS
    if len(records) > limit:
        raise IngestRejected(
            413, "too_many_events", f"{len(records)} records; at most {limit} a request"
        )
    return records


def _mapped(mapping: Callable[[], T]) -> T:
    try:
        return mapping()
    except RecordErrors as refused:
        count = len(refused.errors)
        raise IngestRejected(
            400,
            "invalid_records",
            f"{count} record{'s' if count != 1 else ''} cannot be read; nothing was stored",
            events=refused.errors[:MAX_ERRORS_SHOWN],
        ) from None


def _append_with_snapshots(
    source: Source, events: list[Mapped], observations: list[Observation]
) -> AppendResult:
    """Turn observations into changes against the ledger's state of their scopes, then append.

    The chain head is locked first, so the state read and the append see the same ledger
    (ledger_append_batch takes the same lock again inside this transaction).
    """
    with transaction.atomic():
        storage.chain_head_lock(source.pk)
        states: dict = {}
        mapped = list(events)
        for observation in sorted(observations, key=lambda o: (o.prefix, o.observed_at)):
            if observation.prefix not in states:
                states[observation.prefix] = scope_state_read(
                    source_id=source.pk, prefix=observation.prefix
                )
            mapped += observation_events(observation, states[observation.prefix])
        return _append(source, _first_of_each_id(mapped))


def _first_of_each_id(mapped: list[Mapped]) -> list[Mapped]:
    # The same observation twice in one request gives the same marker id with other counts.
    seen: set[str] = set()
    unique = []
    for item in mapped:
        if item.event["event_id"] not in seen:
            seen.add(item.event["event_id"])
            unique.append(item)
    return unique


def _append(source: Source, mapped: list[Mapped]) -> AppendResult:
    limit = settings.POSTURE_INGEST_MAX_EVENTS * EVENTS_PER_REQUEST_FACTOR
    if len(mapped) > limit:
        raise IngestRejected(
            413, "too_many_events", f"the request maps to {len(mapped)} events; at most {limit}"
        )
    events = [item.event for item in mapped]
    records, _ = batch_records(
        document=orjson.dumps(events),
        source=source,
        max_events=len(events),
        parsed=events,
        origins=[item.origin for item in mapped],
    )
    result = ledger_append_batch(source=source, records=records)
    repeated_in_request = len(events) - len(records)
    if repeated_in_request:
        result = dataclasses.replace(result, duplicates=result.duplicates + repeated_in_request)
    return result
