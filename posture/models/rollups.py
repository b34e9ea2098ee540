"""Rollups: derived counts of the ledger, by hour, and by day for what long windows read.

Derived data, not part of the ledger: every table here may be dropped and rebuilt from the
events (`manage.py rebuild_rollups`), and the rebuild gives exactly the incremental numbers
because every measure is an integer count (no floating-point sums). Dimensions that an event
leaves out are stored as "" so they can be part of unique keys. posture.rollups maintains them;
docs/slis.md says which SLI reads which table.
"""

from django.db import models

from audit.models import Event, Source
from posture.models.catalogue import Rule
from posture.sli import LATENCY_BOUNDS_MS, LEAD_TIME_BOUNDS_MINUTES, TTD_BOUNDS_SECONDS

# One column per histogram bucket (the last one counts values above the last bound), so that
# a window's histogram is one SUM per column in SQL.
LATENCY_COLUMNS = tuple(f"latency_{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
TTD_COLUMNS = tuple(f"ttd_{i:02d}" for i in range(len(TTD_BOUNDS_SECONDS) + 1))
LEAD_TIME_COLUMNS = tuple(f"lead_{i:02d}" for i in range(len(LEAD_TIME_BOUNDS_MINUTES) + 1))


def _source() -> models.ForeignKey:
    # No database constraint: rollups are written in bulk by SQL and sources are never deleted.
    return models.ForeignKey(
        Source, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )


def _rule() -> models.ForeignKey:
    return models.ForeignKey(
        Rule, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )


def _dimension(max_length: int = 128) -> models.CharField:
    return models.CharField(max_length=max_length, default="", db_default="", blank=True)


def _count() -> models.PositiveBigIntegerField:
    # A database default too: rollups are written by INSERT statements naming only some columns.
    return models.PositiveBigIntegerField(default=0, db_default=0)


class RollupCursor(models.Model):
    """How far along each source's chain the rollups have counted (the last seq included)."""

    source = models.OneToOneField(
        Source, on_delete=models.CASCADE, primary_key=True, related_name="rollup_cursor"
    )
    seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.source_id}@{self.seq}"


class DecisionMeasures(models.Model):
    """What the decision rollups count, by hour and by day."""

    decisions = _count()
    # Enforcement was expected (mode enforce or unset) and the enforcement point reported it.
    enforce_expected = _count()
    enforce_ok = _count()
    excepted = _count()
    # Of the excepted: enforcement expected, and applied (M2 leaves them out).
    excepted_enforce_expected = _count()
    excepted_enforce_ok = _count()
    latency_observed = _count()

    class Meta:
        abstract = True


class DecisionHourly(DecisionMeasures):
    bucket = models.DateTimeField()
    source = _source()
    rule = _rule()
    environment = _dimension()
    service = _dimension()
    outcome = _dimension(16)

    class Meta:
        constraints = [
            # The incremental upsert (INSERT ... ON CONFLICT) and the scoped SLI queries.
            models.UniqueConstraint(
                fields=["bucket", "source", "rule", "environment", "service", "outcome"],
                name="decision_hourly_key",
            )
        ]


class DecisionDaily(DecisionMeasures):
    """DecisionHourly without the service, by UTC day: what day windows not scoped by service
    read (RuleDaily's decision counts are summed from it; unscoped day windows read those)."""

    day = models.DateField()
    source = _source()
    rule = _rule()
    environment = _dimension()
    outcome = _dimension(16)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "rule", "environment", "outcome"],
                name="decision_daily_key",
            )
        ]


for _model in (DecisionHourly, DecisionDaily):
    for _name in LATENCY_COLUMNS:
        _model.add_to_class(_name, _count())


class ViolationHourly(models.Model):
    """Violation events by the hour they were detected (occurred, when not detected)."""

    bucket = models.DateTimeField()
    source = _source()
    rule = _rule()
    environment = _dimension()
    service = _dimension()
    severity = _dimension(16)
    opened = _count()
    resolved = _count()
    # Opened violations that say when they were detected: detected_at - occurred_at.
    ttd_observed = _count()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "source", "rule", "environment", "service", "severity"],
                name="violation_hourly_key",
            )
        ]


for _name in TTD_COLUMNS:
    ViolationHourly.add_to_class(_name, _count())


class ViolationEpisode(models.Model):
    """One stretch of time during which a rule was violated by a resource."""

    source = _source()
    rule = _rule()
    resource = models.CharField(max_length=1024, default="", blank=True)
    environment = _dimension()
    service = _dimension()
    severity = _dimension(16)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Open violations of a set of rules at a time (framework status, daily series).
            models.Index(fields=["rule", "opened_at"], name="violation_episode_rule"),
            # The rollups find the open episode of (source, resource) for each violation event.
            models.Index(
                fields=["source", "resource"],
                condition=models.Q(resolved_at__isnull=True),
                name="violation_episode_open",
            ),
        ]


class RemediationHourly(models.Model):
    bucket = models.DateTimeField()
    source = _source()
    rule = _rule()
    environment = _dimension()
    service = _dimension()
    status = _dimension(16)
    remediations = _count()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "source", "rule", "environment", "service", "status"],
                name="remediation_hourly_key",
            )
        ]


class DeploymentHourly(models.Model):
    """policy_deployment events by the hour the version became active."""

    bucket = models.DateTimeField()
    source = _source()
    rule = _rule()  # the policy: a rule of (policy, "")
    environment = _dimension()
    deployments = _count()
    # Deployments whose commit time is not known (OPA status reports only the activation).
    lead_unknown = _count()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "source", "rule", "environment"], name="deployment_hourly_key"
            )
        ]


for _name in LEAD_TIME_COLUMNS:
    DeploymentHourly.add_to_class(_name, _count())


class InventoryHourly(models.Model):
    """The latest inventory snapshot in each hour, per source and scope."""

    bucket = models.DateTimeField()
    source = _source()
    environment = _dimension()
    service = _dimension()
    observed_at = models.DateTimeField()
    resources_total = _count()
    resources_covered = _count()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "source", "environment", "service"], name="inventory_hourly_key"
            )
        ]


class HeartbeatHourly(models.Model):
    """Which heartbeat slots of an hour saw a heartbeat, and the source's own drop counters."""

    bucket = models.DateTimeField()
    source = _source()
    heartbeats = _count()
    # The slot length (the source's interval, at least 60 s so an hour fits in 60 bits) and
    # a bit per slot of the hour that saw at least one heartbeat.
    slot_seconds = models.PositiveIntegerField()
    slots_seen = models.BigIntegerField(default=0)
    # The cumulative counters the engine reports (emitted_total, dropped_total): lowest and
    # highest seen in the hour, so drops in a window are the rise of dropped_total.
    dropped_min = models.BigIntegerField(null=True, blank=True)
    dropped_max = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "source"], name="heartbeat_hourly_key")
        ]


class SequenceSpan(models.Model):
    """The source's own sequence numbers seen, per epoch: lowest, highest and how many were
    stored (gaps are lost events)."""

    source = _source()
    epoch = _dimension()
    seq_min = models.BigIntegerField()
    seq_max = models.BigIntegerField()
    stored = _count()

    class Meta:
        abstract = True


class SequenceHourly(SequenceSpan):
    """Stored source sequence numbers by hour, source and epoch (completeness, gaps)."""

    bucket = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "source", "epoch"], name="sequence_hourly_key"
            )
        ]


class RuleDaily(models.Model):
    """Everything the rule-level SLIs count, by UTC day and rule, over all sources: the sums of
    the decision, violation, remediation, deployment and triage rollups of the day (the whole
    RuleCounts of posture.selectors, in its order). The 90-day trends and the frameworks' daily
    scores read this one table. posture.rollups adds to a day's rows (and sets their triage
    counts) in the transaction that counts the hourly rows, so it always agrees with them."""

    day = models.DateField()
    rule = _rule()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "rule"], name="rule_daily_key")]


# The measures of RuleDaily, in RuleCounts' order with each histogram spread into its buckets.
RULE_DAILY_COLUMNS = (
    "decisions",
    "denies",
    "enforce_expected",
    "enforce_ok",
    "excepted",
    "excepted_denies",
    *LATENCY_COLUMNS,
    "violations_opened",
    *TTD_COLUMNS,
    "remediations_succeeded",
    "remediations_failed",
    "deployments",
    *LEAD_TIME_COLUMNS,
    "triaged",
    "false_positives",
)
for _name in RULE_DAILY_COLUMNS:
    RuleDaily.add_to_class(_name, _count())


class SequenceDaily(SequenceSpan):
    """SequenceHourly by UTC day: what the daily series of audit completeness (M8) read."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "source", "epoch"], name="sequence_daily_key")
        ]


class HeartbeatDaily(models.Model):
    """HeartbeatHourly by UTC day: the heartbeat slots seen in the day, the day's lowest and
    highest dropped_total, and the first hour with a heartbeat. Recounted from the hours of
    the day (slots are bits of each hour, which do not add up across hours)."""

    day = models.DateField()
    source = _source()
    slots_seen = _count()
    dropped_min = models.BigIntegerField(null=True, blank=True)
    dropped_max = models.BigIntegerField(null=True, blank=True)
    first_hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "source"], name="heartbeat_daily_key")
        ]


class TriageLabel(models.TextChoices):
    FALSE_POSITIVE = "false_positive"
    CONFIRMED = "confirmed"


class TriageState(models.Model):
    """The latest triage label of a denied decision (the labels themselves are ledger events)."""

    event = models.OneToOneField(
        Event, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    label = models.CharField(max_length=16, choices=TriageLabel.choices)
    labelled_at = models.DateTimeField()
    labelled_by = models.CharField(max_length=150, blank=True)
    note = models.TextField(blank=True)
    # Copies of the decision's dimensions, so M4 for any scope needs no join to the ledger.
    source = _source()
    rule = _rule()
    occurred_at = models.DateTimeField()
    environment = _dimension()
    service = _dimension()

    def __str__(self) -> str:
        return f"{self.event_id}: {self.label}"
