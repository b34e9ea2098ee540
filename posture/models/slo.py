"""SLO targets: data per SLI and scope, not constants in code."""

from django.db import models


class Sli(models.TextChoices):
    M1 = "M1", "decision latency p95"
    M2 = "M2", "enforcement success rate"
    M3 = "M3", "deny rate"
    M4 = "M4", "false-positive rate"
    M5 = "M5", "policy deployment lead time p95"
    M6 = "M6", "policy coverage"
    M7 = "M7", "remediation success rate"
    M8 = "M8", "audit completeness"
    M9 = "M9", "engine availability"
    M10 = "M10", "violation time-to-detect p95"


class Direction(models.TextChoices):
    AT_LEAST = "at_least", "at least"
    AT_MOST = "at_most", "at most"


class Scope(models.TextChoices):
    """What a target applies to, from the most specific to the least (the lookup order)."""

    RULE = "rule"
    CONTROL = "control"
    FRAMEWORK = "framework"
    SERVICE = "service"
    ENVIRONMENT = "environment"
    SOURCE = "source"
    ORG = "org"


class SloTarget(models.Model):
    sli = models.CharField(max_length=4, choices=Sli.choices)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ORG)
    # The rule id, "framework:control", framework slug, service, environment or source name;
    # empty for the whole organisation.
    scope_value = models.CharField(max_length=300, blank=True, default="")
    target = models.FloatField(help_text="a ratio 0..1, or milliseconds/seconds/minutes")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    note = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["sli", "scope", "scope_value"]
        constraints = [
            models.UniqueConstraint(fields=["sli", "scope", "scope_value"], name="slo_target_once"),
            models.CheckConstraint(
                condition=models.Q(scope="org", scope_value="") | ~models.Q(scope="org"),
                name="slo_target_org_has_no_value",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.scope} {self.scope_value}".strip()
        return f"{self.sli} {self.get_direction_display()} {self.target} ({where})"
