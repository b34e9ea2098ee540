from django.core.management.base import BaseCommand, CommandError

from audit.services import CheckpointRefused, checkpoint_create


class Command(BaseCommand):
    help = "Sign the heads of all chains now (refused if they do not extend the last checkpoint)."

    def handle(self, *args, **options):
        try:
            checkpoint = checkpoint_create(force=True)
        except CheckpointRefused as refused:
            raise CommandError(f"checkpoint refused: {refused}") from None
        self.stdout.write(f"checkpoint {checkpoint.number} {checkpoint.hash}")
