"""The ledger: sources and their tokens, the append-only event table, chain heads, checkpoints.

Only audit.services writes Event and Checkpoint rows; the database refuses to change them
afterwards (triggers in migration 0002).
"""

from django.db import models

from audit.adapters.config import validate_adapter_config
from audit.canonical import GENESIS_HASH


class SourceKind(models.TextChoices):
    OPA = "opa", "OPA"
    GATEKEEPER = "gatekeeper", "Gatekeeper"
    KYVERNO = "kyverno", "Kyverno"
    GATEWAY = "gateway", "API gateway"
    CI = "ci", "CI gate"
    NATIVE = "native", "Native"
    INTERNAL = "internal", "Posture itself"


class Source(models.Model):
    """An enforcement point. Its name is part of every hashed event, so it never changes."""

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    environment = models.CharField(max_length=64, blank=True)
    owner = models.CharField(max_length=128, blank=True)
    heartbeat_interval_seconds = models.PositiveIntegerField(default=300)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # How the engine adapters map this source's records (docs/adapters.md), e.g. which OPA
    # decision paths are which policy and where their outcome is.
    adapter_config = models.JSONField(
        default=dict, blank=True, validators=[validate_adapter_config]
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SourceToken(models.Model):
    """A bearer token of one source. Only its SHA-256 is stored; the token is shown once."""

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="tokens")
    label = models.CharField(max_length=128, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.source.name}:{self.token_prefix}…"


class ChainHead(models.Model):
    """The newest link of one source's chain; its row lock serialises appends to that chain."""

    source = models.OneToOneField(
        Source, on_delete=models.PROTECT, primary_key=True, related_name="head"
    )
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.source_id}@{self.seq}"


class EventKind(models.TextChoices):
    DECISION = "decision"
    VIOLATION = "violation"
    REMEDIATION = "remediation"
    HEARTBEAT = "heartbeat"
    POLICY_DEPLOYMENT = "policy_deployment"
    INVENTORY = "inventory"
    # Internal kinds: Posture's own audit trail, written by services, never by a source.
    EXCEPTION_TRANSITION = "exception_transition"
    TRIAGE_LABEL = "triage_label"
    REPORT_DIGEST = "report_digest"


class Event(models.Model):
    """One ledger row: chain position, hashed canonical bytes, and typed copies for queries.

    `canonical` holds the exact bytes that were hashed; every typed column is derived from them
    and verification checks that they still agree.
    """

    # No database FK constraint: it would add a lookup of the source for every inserted row,
    # and the chain head (which has one) is locked for every append, so the source exists.
    # No index of its own either: both unique constraints below start with source_id.
    source = models.ForeignKey(
        Source,
        on_delete=models.PROTECT,
        related_name="events",
        db_constraint=False,
        db_index=False,
    )
    seq = models.BigIntegerField()
    received_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    canonical = models.BinaryField()

    event_id = models.CharField(max_length=128)
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    occurred_at = models.DateTimeField()
    source_seq = models.BigIntegerField(null=True)
    source_epoch = models.CharField(max_length=128, null=True)
    policy = models.CharField(max_length=256, null=True)
    rule = models.CharField(max_length=256, null=True)
    policy_version = models.CharField(max_length=128, null=True)
    outcome = models.CharField(max_length=16, null=True)
    mode = models.CharField(max_length=16, null=True)
    enforced = models.BooleanField(null=True)
    latency_ms = models.FloatField(null=True)
    status = models.CharField(max_length=16, null=True)
    environment = models.CharField(max_length=128, null=True)
    service = models.CharField(max_length=128, null=True)
    namespace = models.CharField(max_length=128, null=True)
    resource = models.CharField(max_length=1024, null=True)
    subject = models.CharField(max_length=512, null=True)
    action = models.CharField(max_length=128, null=True)
    severity = models.CharField(max_length=16, null=True)
    detected_at = models.DateTimeField(null=True)
    reason = models.TextField(null=True)
    trace_id = models.CharField(max_length=32, null=True)

    class Meta:
        constraints = [
            # Chain walks and verification read one source's rows in seq order.
            models.UniqueConstraint(fields=["source", "seq"], name="event_source_seq_unique"),
            # Idempotent ingest: the dedupe query looks event ids up within a source.
            models.UniqueConstraint(
                fields=["source", "event_id"], name="event_source_event_id_unique"
            ),
        ]
        indexes = [
            # The event list: newest first, filtered by time range, cursor on (occurred_at, id).
            models.Index(fields=["occurred_at", "id"], name="event_occurred_idx"),
            # The on-call page: the newest denies' reasons, and the window's remediations
            # (loops and failures), without reading every decision of the hours around them.
            models.Index(
                fields=["occurred_at"],
                condition=models.Q(kind="decision", outcome="deny"),
                name="event_deny_occurred_idx",
            ),
            models.Index(
                fields=["occurred_at"],
                condition=models.Q(kind="remediation"),
                name="event_remediation_occurred_idx",
            ),
            # The on-call page: each engine's last heartbeat.
            models.Index(
                fields=["occurred_at"],
                condition=models.Q(kind="heartbeat"),
                name="event_heartbeat_occurred_idx",
            ),
            # A rule's page: its policy's newest deployments (a few rows among millions).
            models.Index(
                fields=["policy", "occurred_at"],
                condition=models.Q(kind="policy_deployment"),
                name="event_deployment_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}#{self.seq} {self.kind} {self.event_id}"


class Checkpoint(models.Model):
    """Signed heads of all chains. `body` holds the exact signed bytes."""

    number = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField()
    body = models.BinaryField()
    hash = models.CharField(max_length=64, unique=True)
    prev_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)
    public_key = models.CharField(max_length=64)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"checkpoint {self.number}"


class VerificationStatus(models.TextChoices):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class VerificationRun(models.Model):
    """One run of ledger verification and what it found (derived data, not part of the ledger)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=VerificationStatus.choices)
    source_name = models.CharField(max_length=64, blank=True)
    result = models.JSONField(default=dict)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"verification {self.pk} {self.status}"
