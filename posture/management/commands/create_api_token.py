from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from posture.roles import user_roles
from posture.services import personal_token_create


class Command(BaseCommand):
    help = "Create a personal API token for a person; prints the token alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--label", default="")
        parser.add_argument("--days", type=int, default=90, help="valid for this many days")

    def handle(self, *args, username, label, days, **options):
        if days <= 0:
            raise CommandError("--days must be a positive number of days")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {username!r}")
        if not user_roles(user):
            raise CommandError(f"{username} has no Posture role; a token would open nothing")
        expires_at = datetime.now(UTC) + timedelta(days=days)
        _, token = personal_token_create(user=user, label=label, expires_at=expires_at)
        self.stdout.write(f"Token for {username}, valid until {expires_at:%Y-%m-%d}, shown once:")
        self.stdout.write(token)
