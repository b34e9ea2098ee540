from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from posture.catalogue import CatalogueInvalid, catalogue_load


class Command(BaseCommand):
    help = (
        "Load a rule catalogue (YAML: rules, their metadata and framework controls); "
        "all of it or nothing. The format is in docs/catalogue.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        try:
            loaded = catalogue_load(path=file)
        except CatalogueInvalid as invalid:
            lines = "\n".join(f"  {problem}" for problem in invalid.problems)
            raise CommandError(f"{file}: nothing was loaded:\n{lines}") from None
        version = "new mapping version" if loaded.new_version else "mapping unchanged"
        self.stdout.write(
            f"{loaded.rules_created} rules created, {loaded.rules_updated} updated, "
            f"{loaded.mappings} control mappings; {version} {loaded.mapping_version}"
        )
