"""The rule catalogue and the framework controls rules map to.

Frameworks and controls are shipped as data (posture/data/frameworks/*.yaml) and synced after
every migrate. Rules come from a catalogue file (`manage.py load_catalogue`), from the admin,
or are registered automatically, as uncatalogued, the first time an event names them.
"""

from django.db import models


class Severity(models.TextChoices):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class Category(models.TextChoices):
    SECURITY = "security"
    COMPLIANCE = "compliance"
    RESILIENCE = "resilience"
    COST = "cost"
    CODING_STANDARD = "coding_standard"


class EnforcementMode(models.TextChoices):
    AUDIT = "audit"
    WARN = "warn"
    ENFORCE = "enforce"


class Framework(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    version = models.CharField(max_length=64)
    publisher = models.CharField(max_length=128, blank=True)
    url = models.URLField(max_length=512, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class Control(models.Model):
    """One requirement of a framework, in its tree (10 → 10.2 → 10.2.1 → 10.2.1.1)."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="controls")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    code = models.CharField(max_length=64)
    title = models.CharField(max_length=512)
    note = models.CharField(max_length=256, blank=True)
    # Document order within the framework, so the tree reads as the standard does.
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["framework", "position"]
        constraints = [
            models.UniqueConstraint(fields=["framework", "code"], name="control_framework_code")
        ]

    def __str__(self) -> str:
        return f"{self.framework.slug} {self.code}"


class Rule(models.Model):
    """A rule of a policy, as events name it: (policy, name); either may be empty."""

    policy = models.CharField(max_length=256, blank=True)
    name = models.CharField(max_length=256, blank=True)
    title = models.CharField(max_length=256, blank=True)
    description = models.TextField(blank=True)
    # Blank while uncatalogued: owner and severity unknown.
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    category = models.CharField(max_length=32, choices=Category.choices, blank=True)
    owner_team = models.CharField(max_length=128, blank=True)
    enforcement_mode = models.CharField(max_length=16, choices=EnforcementMode.choices, blank=True)
    remediation = models.TextField(blank=True)
    links = models.JSONField(default=list, blank=True)
    catalogued = models.BooleanField(
        default=True, help_text="False for rules registered automatically from events."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["policy", "name"]
        constraints = [
            # Rollups register unknown rules by (policy, name) with INSERT ... ON CONFLICT.
            models.UniqueConstraint(fields=["policy", "name"], name="rule_policy_name")
        ]

    def __str__(self) -> str:
        return (
            f"{self.policy}/{self.name}" if self.policy and self.name else self.policy or self.name
        )

    @property
    def label(self) -> str:
        return self.title or str(self)


class MappingVersion(models.Model):
    """One version of the rule → control mapping; every figure that uses it names it."""

    version = models.CharField(max_length=64, unique=True)
    loaded_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=512, blank=True, help_text="the file it was loaded from")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the mapping, sorted")

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return self.version


class RuleControl(models.Model):
    mapping_version = models.ForeignKey(
        MappingVersion, on_delete=models.CASCADE, related_name="mappings"
    )
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="control_mappings")
    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="rule_mappings")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mapping_version", "rule", "control"], name="rule_control_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} → {self.control} ({self.mapping_version})"
