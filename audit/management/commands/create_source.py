from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.models import SourceKind
from audit.services import source_create, source_token_create

KINDS = [kind for kind in SourceKind.values if kind != SourceKind.INTERNAL]


class Command(BaseCommand):
    help = "Create a source (an enforcement point) and print its new token alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name", help="a slug, unique, never renamed (it is part of every hash)")
        parser.add_argument("--kind", required=True, choices=KINDS)
        parser.add_argument("--environment", default="")
        parser.add_argument("--owner", default="")
        parser.add_argument("--heartbeat-interval", type=int, default=300, help="seconds")

    def handle(self, *args, name, kind, environment, owner, heartbeat_interval, **options):
        if heartbeat_interval <= 0:
            raise CommandError("--heartbeat-interval must be a positive number of seconds")
        try:
            source = source_create(
                name=name,
                kind=kind,
                environment=environment,
                owner=owner,
                heartbeat_interval_seconds=heartbeat_interval,
            )
        except ValidationError as error:
            messages = "; ".join(
                f"{field}: {' '.join(errs)}" for field, errs in error.message_dict.items()
            )
            raise CommandError(f"cannot create source {name!r}: {messages}") from None
        _, token = source_token_create(source=source, label="created with the source")
        self.stdout.write(f"Created source {source.name} ({source.kind}). Its token, shown once:")
        self.stdout.write(token)
