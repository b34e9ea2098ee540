"""Demo users, demo sources and weeks of demo events, loaded through the real ingest path.

Safe to run again: passwords are reset (so the printed ones always work) and, since the ledger
is append-only, events are loaded only while the demo sources have none.
"""

import random
import secrets
import time
from collections import Counter
from datetime import datetime

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from audit.demo import (
    DEFAULT_SEED,
    DEMO_DAYS,
    DEMO_SOURCES,
    MIN_DAYS,
    demo_batches,
    demo_end,
    demo_scenarios,
)
from audit.ingest import IngestRejected
from audit.models import Event, Source
from audit.services import (
    checkpoint_create,
    ingest_native,
    source_create,
    source_token_create,
)
from posture.catalogue import DEMO_CATALOGUE, catalogue_load
from posture.roles import ROLES, Role
from posture.services import triage_label

URL = "http://127.0.0.1:8000"


def demo_users_reset() -> dict[str, str]:
    """One user per role, named after it, with a new random password each time: {name: password}.

    The admin is also staff and superuser, so the Django admin works for it.
    """
    users = get_user_model()
    passwords = {}
    for role in ROLES:
        user, _ = users.objects.get_or_create(username=role)
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.is_active = True
        user.is_staff = user.is_superuser = role == Role.ADMIN
        user.save()
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        passwords[role] = password
    return passwords


def demo_triage(*, seed: int, share: float = 0.02) -> int:
    """On-call's verdicts on a sample of the demo's denies, so the false-positive rate has data.

    Most are confirmed; the gateway's rate limiter, tuned too tight, has more false positives.
    """
    rng = random.Random(seed)
    triager = get_user_model().objects.get(username=Role.ONCALL)
    denies = Event.objects.filter(kind="decision", outcome="deny").select_related("source")
    labelled = 0
    for decision in denies.order_by("pk").iterator():
        if rng.random() >= share:
            continue
        false_positive_odds = 0.4 if decision.rule == "rate-limit" else 0.05
        label = "false_positive" if rng.random() < false_positive_odds else "confirmed"
        note = "burst from a batch job, not abuse" if label == "false_positive" else ""
        triage_label(event=decision, label=label, note=note, user=triager)
        labelled += 1
    return labelled


def demo_sources_ensure() -> tuple[dict[str, Source], dict[str, str]]:
    """The demo sources by name, created when missing; and the tokens of those just created."""
    sources, tokens = {}, {}
    for spec in DEMO_SOURCES:
        source = Source.objects.filter(name=spec.name).first()
        if source is None:
            source = source_create(
                name=spec.name,
                kind=spec.kind,
                environment=spec.environment,
                owner="demo",
                heartbeat_interval_seconds=spec.heartbeat_interval_seconds,
            )
            tokens[spec.name] = source_token_create(source=source, label="demo")[1]
        sources[spec.name] = source
    return sources, tokens


def demo_events_load(
    *, sources: dict[str, Source], end: datetime, days: int, seed: int, scale: float
) -> Counter[tuple[str, str]]:
    """Send the demo events through native ingest; counts of stored events by (source, kind).

    One transaction around the whole load: a failure leaves no half-loaded demo behind, which
    would otherwise block every later load (they skip sources that have events).
    """
    stored: Counter[tuple[str, str]] = Counter()
    with transaction.atomic():
        for spec, batch in demo_batches(end=end, days=days, seed=seed, scale=scale):
            result = ingest_native(
                source=sources[spec.name],
                body=orjson.dumps(batch),
                content_type="application/json",
                content_encoding="",
            )
            if result.accepted != len(batch):
                raise CommandError(f"{spec.name}: {result.duplicates} events were already stored")
            stored.update((spec.name, event["kind"]) for event in batch)
    return stored


class Command(BaseCommand):
    help = (
        "Create demo users (one per role) and demo sources, load demo events through the ingest "
        "path, and print how to sign in. Run it again to get new passwords."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=DEMO_DAYS, help=f"length of the window (>= {MIN_DAYS})"
        )
        parser.add_argument(
            "--scale", type=float, default=1.0, help="multiplies decisions and violations"
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument(
            "--force",
            action="store_true",
            help="run with DEBUG off too (it resets the passwords of users named after roles)",
        )
        parser.add_argument(
            "--end",
            type=_aware_time,
            help="end of the window, RFC 3339 with an offset (default: now); for repeatable loads",
        )

    def handle(
        self,
        *args,
        days: int,
        scale: float,
        seed: int,
        end: datetime | None,
        force: bool,
        **options,
    ) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "load_demo is for local demos: it resets the passwords of the users named after "
                "roles. DEBUG is off; add --force if this really is a demo installation."
            )
        if days < MIN_DAYS:
            raise CommandError(f"--days must be at least {MIN_DAYS}")
        if scale <= 0:
            raise CommandError("--scale must be positive")
        started = time.perf_counter()
        passwords = demo_users_reset()
        loaded = catalogue_load(path=DEMO_CATALOGUE)
        self.stdout.write(
            f"Catalogue: {loaded.rules_created + loaded.rules_updated} rules written, "
            f"mapping version {loaded.mapping_version}."
        )
        sources, tokens = demo_sources_ensure()
        if Event.objects.filter(source__in=sources.values()).exists():
            self.stdout.write(
                "The demo sources already have events; the ledger is append-only, so none were "
                "added. To start over, delete var/posture.sqlite3* and run migrate."
            )
        else:
            end = demo_end(end)
            try:
                stored = demo_events_load(
                    sources=sources, end=end, days=days, seed=seed, scale=scale
                )
            except IngestRejected as rejected:
                detail = orjson.dumps(rejected.as_dict()).decode()[:2000]
                raise CommandError(f"the ingest path refused a demo batch: {detail}") from None
            labelled = demo_triage(seed=seed)
            # Sign the fresh chains at once, as beat would within a minute in production.
            checkpoint = checkpoint_create()
            self._report_events(stored, end=end, days=days, seconds=time.perf_counter() - started)
            self.stdout.write(f"On-call triaged {labelled} denies.")
            if checkpoint is not None:
                self.stdout.write(f"Signed checkpoint {checkpoint.number} over all chains.")
        self._report_sources(tokens)
        self._report_users(passwords)

    def _report_events(
        self, stored: Counter[tuple[str, str]], *, end: datetime, days: int, seconds: float
    ) -> None:
        total = sum(stored.values())
        self.stdout.write(
            f"Loaded {total:,} events over {days} days ending {end:%Y-%m-%d %H:%M} UTC "
            f"in {seconds:.1f} s."
        )
        kinds = sorted({kind for _, kind in stored})
        self.stdout.write(f"  {'source':<17}{'events':>8}  " + "  ".join(kinds))
        for spec in DEMO_SOURCES:
            counts = "  ".join(f"{stored[spec.name, kind]:>{len(kind)}}" for kind in kinds)
            self.stdout.write(f"  {spec.name:<17}{_total_for(stored, spec.name):>8}  {counts}")
        self.stdout.write("Incidents to look for:")
        for label, (start, stop) in demo_scenarios(end=end, days=days).described():
            self.stdout.write(f"  {label}: {_utc(start)} to {_utc(stop)}")

    def _report_sources(self, tokens: dict[str, str]) -> None:
        self.stdout.write("")
        self.stdout.write("Demo sources:")
        for spec in DEMO_SOURCES:
            line = (
                f"  {spec.name:<17}{spec.kind:<12}{spec.environment:<9}"
                f"heartbeat every {spec.heartbeat_interval_seconds} s"
            )
            if spec.name in tokens:
                line += f"  token (shown once): {tokens[spec.name]}"
            self.stdout.write(line)

    def _report_users(self, passwords: dict[str, str]) -> None:
        self.stdout.write("")
        self.stdout.write(f"Sign in at {URL}")
        self.stdout.write(f"  {'username':<11}{'password':<20}role")
        for role, password in passwords.items():
            note = " (also Django admin)" if role == Role.ADMIN else ""
            self.stdout.write(f"  {role:<11}{password:<20}{role}{note}")


def _total_for(stored: Counter[tuple[str, str]], source_name: str) -> int:
    return sum(count for (name, _), count in stored.items() if name == source_name)


def _aware_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("needs an offset, e.g. 2026-03-01T00:00:00+00:00")
    return moment


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms // 1000))
