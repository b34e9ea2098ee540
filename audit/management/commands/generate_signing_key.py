from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.signing import public_key_b64, write_new_key


class Command(BaseCommand):
    help = "Write a new Ed25519 checkpoint signing key (PEM, mode 0600) and print its public key."

    def add_arguments(self, parser):
        parser.add_argument("path", help="where to write the private key; must not exist")

    def handle(self, *args, path, **options):
        try:
            key = write_new_key(Path(path))
        except FileExistsError:
            raise CommandError(f"{path} exists; refusing to overwrite a signing key") from None
        self.stdout.write(f"wrote {path}; public key (base64): {public_key_b64(key.public_key())}")
