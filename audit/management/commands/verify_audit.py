import os

import orjson
from django.core.management.base import BaseCommand, CommandError

from audit.models import Source
from audit.verify import CheckpointRecord, ledger_verify


class Command(BaseCommand):
    help = (
        "Re-hash every chain, check typed columns against the hashed bytes and every checkpoint "
        "signature. Exit 0 when intact, 1 naming the first bad row of each broken chain."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", help="verify only this source's chain")
        parser.add_argument(
            "--checkpoints",
            help="a JSON-lines export of checkpoints kept outside the database, checked too",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument(
            "--workers",
            type=int,
            default=min(os.cpu_count() or 1, 4),
            help="processes walking chains in parallel (default: the CPUs, at most 4)",
        )

    def handle(self, *args, source=None, checkpoints=None, json=False, workers=1, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        if source and not Source.objects.filter(name=source).exists():
            raise CommandError(f"no source named {source!r}")
        exported = _read_export(checkpoints) if checkpoints else None
        report = ledger_verify(source_name=source, exported=exported, workers=workers)
        if json:
            self.stdout.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
        else:
            rate = f"{report.events_checked / report.seconds:,.0f}" if report.seconds else "-"
            self.stdout.write(
                f"{report.events_checked} events in {report.chains_checked} chains, "
                f"{report.checkpoints_checked} checkpoints checked in {report.seconds:.2f} s "
                f"({rate} events/s)"
            )
            for chain_break in report.breaks:
                self.stdout.write(
                    f"BROKEN source={chain_break.source} seq={chain_break.seq} "
                    f"event_id={chain_break.event_id or '-'}: {chain_break.problem}"
                )
            for problem in report.checkpoint_problems:
                self.stdout.write(f"BROKEN {problem}")
            self.stdout.write("ledger intact" if report.ok else "ledger NOT intact")
        if not report.ok:
            raise SystemExit(1)


def _read_export(path: str) -> list[CheckpointRecord]:
    try:
        with open(path, "rb") as handle:
            return [
                CheckpointRecord.from_export(orjson.loads(line)) for line in handle if line.strip()
            ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CommandError(f"cannot read checkpoints from {path}: {error}") from None
