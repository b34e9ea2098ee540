"""Exceptions (waivers): a time-limited exemption of a scope from a rule, approved by others.

Writes go through posture.exceptions (the services); the database holds the four-eyes rule
itself, so that no code path, not even a shell, can record an approval by the requester.
"""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class ExceptionState(models.TextChoices):
    REQUESTED = "requested"
    # Approved means active until expires_at: expiry is judged when read, not when the job runs.
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVOKED = "revoked"


class NotificationKind(models.TextChoices):
    REQUESTED = "requested"
    DECIDED = "decided"
    EXPIRING_3D = "expiring_3d", "expiring in 3 days"
    EXPIRING_1D = "expiring_1d", "expiring in 1 day"
    EXPIRED = "expired"


class PolicyExceptionQuerySet(models.QuerySet):
    def active(self, at: datetime) -> "PolicyExceptionQuerySet":
        """Approved and in force at `at`, whether or not the expiry job has run."""
        return self.filter(state=ExceptionState.APPROVED, active_from__lte=at, expires_at__gt=at)

    def lapsed(self, at: datetime) -> "PolicyExceptionQuerySet":
        """Still marked approved, but past their expiry: what the expiry job marks expired."""
        return self.filter(state=ExceptionState.APPROVED, expires_at__lte=at)


class PolicyException(models.Model):
    """A request to exempt (environment, service, resource pattern) from a rule for a while.

    Named PolicyException, not Exception, so that it never shadows the builtin.
    """

    rule = models.ForeignKey("posture.Rule", on_delete=models.PROTECT, related_name="exceptions")
    # Scope: empty means any; resource_pattern is fnmatch-style (`deployment/payments-*`).
    environment = models.CharField(max_length=128, blank=True)
    service = models.CharField(max_length=128, blank=True, help_text="service or namespace")
    resource_pattern = models.CharField(max_length=512, default="*")
    justification = models.TextField()
    ticket_url = models.URLField(max_length=512, blank=True)
    duration_days = models.PositiveIntegerField()
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="exceptions_requested"
    )
    state = models.CharField(
        max_length=16, choices=ExceptionState.choices, default=ExceptionState.REQUESTED
    )
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="exceptions_decided",
    )
    decision_comment = models.TextField(blank=True)
    active_from = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="expired or revoked")
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="exceptions_ended",
    )
    extends = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="extensions"
    )

    objects = PolicyExceptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_days__gte=1), name="exception_duration_positive"
            ),
            # Whoever decides (approves last or rejects) is never the requester.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requester")),
                name="exception_decider_not_requester",
            ),
            models.CheckConstraint(
                condition=~Q(state="approved")
                | Q(active_from__isnull=False, expires_at__isnull=False),
                name="exception_approved_has_period",
            ),
        ]
        indexes = [
            # The bundle, the active list and the expiry job: approved ones by expiry.
            models.Index(fields=["state", "expires_at"], name="exception_state_expiry"),
        ]

    def __str__(self) -> str:
        return f"exception #{self.pk} on {self.rule}"

    def is_active(self, at: datetime) -> bool:
        return (
            self.state == ExceptionState.APPROVED
            and self.active_from is not None
            and self.expires_at is not None
            and self.active_from <= at < self.expires_at
        )

    def state_at(self, at: datetime) -> str:
        """The state as a reader should see it: approved past expiry reads as expired."""
        if self.state == ExceptionState.APPROVED and not self.is_active(at):
            return ExceptionState.EXPIRED
        return self.state


class ExceptionApproval(models.Model):
    """One approver's yes. Critical rules need two distinct ones before the exception is active.

    The requester is copied onto the row so that the database can refuse a self-approval.
    """

    exception = models.ForeignKey(
        PolicyException, on_delete=models.CASCADE, related_name="approvals"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField()
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["exception", "approver"], name="exception_approval_once"
            ),
            models.CheckConstraint(
                condition=~Q(approver=F("requester")), name="exception_approver_not_requester"
            ),
        ]

    def __str__(self) -> str:
        return f"approval of exception #{self.exception_id} by user #{self.approver_id}"


class ExceptionNotification(models.Model):
    """A notification that was sent; the unique key makes a redelivered task send nothing."""

    exception = models.ForeignKey(
        PolicyException, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    sent_at = models.DateTimeField()
    recipients = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["exception", "kind"], name="exception_notification_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} notice of exception #{self.exception_id}"
