from django.db import migrations

from audit.guards import guards_create, guards_drop


def create(apps, schema_editor):
    guards_create(schema_editor.connection)


def drop(apps, schema_editor):
    guards_drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
