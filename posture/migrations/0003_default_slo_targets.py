"""The starting SLO targets of docs/slis.md (from DESIGN.md), for the whole organisation.

Data, not code: edit them in the admin or add narrower ones per rule, source or framework.
"""

from django.db import migrations

DEFAULT_TARGETS = [
    ("M1", 50.0, "at_most", "milliseconds, p95; 10-50 ms on synchronous paths"),
    ("M2", 0.999, "at_least", "decisions enforced as decided"),
    ("M3", 0.05, "at_most", "a starting point; set deny-rate targets per rule"),
    ("M4", 0.01, "at_most", "false positives among triaged denies"),
    ("M5", 30.0, "at_most", "minutes from commit to active, p95"),
    ("M6", 0.9, "at_least", "resources with an enforcement hook"),
    ("M7", 0.95, "at_least", "successful remediations"),
    ("M8", 0.999, "at_least", "events stored of events emitted; set 1.0 for critical sources"),
    ("M9", 0.9995, "at_least", "heartbeat intervals seen"),
    ("M10", 300.0, "at_most", "seconds from occurrence to detection, p95"),
]


def create_targets(apps, schema_editor):
    SloTarget = apps.get_model("posture", "SloTarget")
    for sli, target, direction, note in DEFAULT_TARGETS:
        SloTarget.objects.get_or_create(
            sli=sli,
            scope="org",
            scope_value="",
            defaults={"target": target, "direction": direction, "note": note},
        )


class Migration(migrations.Migration):
    dependencies = [("posture", "0002_catalogue_rollups_slo")]

    operations = [migrations.RunPython(create_targets, migrations.RunPython.noop)]
