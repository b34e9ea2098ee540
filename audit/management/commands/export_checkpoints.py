import orjson
from django.core.management.base import BaseCommand

from audit.models import Checkpoint
from audit.verify import CheckpointRecord


class Command(BaseCommand):
    help = (
        "Print every checkpoint as a JSON line, to keep outside the database "
        "(verify_audit --checkpoints FILE checks against it)."
    )

    def handle(self, *args, **options):
        for checkpoint in Checkpoint.objects.order_by("number").iterator():
            self.stdout.write(
                orjson.dumps(CheckpointRecord.from_model(checkpoint).as_export()).decode()
            )
