from django.db import migrations

from audit.guards import guards_create, guards_drop


def create(apps, schema_editor):
    guards_create(schema_editor.connection)


def drop(apps, schema_editor):
    guards_drop(schema_editor.connection)


def internal_source(apps, schema_editor):
    # Posture's own audit trail (exception transitions, triage, report digests) is a chain too.
    Source = apps.get_model("audit", "Source")
    ChainHead = apps.get_model("audit", "ChainHead")
    source, _ = Source.objects.get_or_create(
        name="posture", defaults={"kind": "internal", "description": "Posture's own audit trail"}
    )
    ChainHead.objects.get_or_create(source=source)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(create, drop),
        migrations.RunPython(internal_source, migrations.RunPython.noop),
    ]
