"""Page render times on the 5-million-event data set of bench/slis.py, on PostgreSQL.

Each page of the dashboards is requested in this process through Django's test client as a
signed-in admin (who may open every page): the server-side time from request to the full
response (queries, Python, templates), a warm-up then the median and the slowest of --runs,
and the number of queries. Bar of the dashboards issue: every page under 300 ms.

It reuses the database bench/slis.py leaves behind (run `make bench-slis` first); it applies
any newer migrations, and writes nothing else. Figures go to bench/results/pages-<time>.json.

    .venv/bin/python bench/pages.py          # make bench-pages
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as machinery
import slis as dataset

BAR_MS = 300.0


def pages() -> list[tuple[str, str]]:
    """(name, path) of every page, with real ids from the data set."""
    from django.db.models import Sum

    from audit.models import Event
    from posture.models import Control, DecisionDaily, Rule, RuleControl

    busiest = (
        DecisionDaily.objects.values("rule_id").annotate(n=Sum("decisions")).order_by("-n").first()
    )
    rule = Rule.objects.get(pk=busiest["rule_id"])
    control = (
        Control.objects.filter(rule_mappings__rule=rule, framework__slug="pci-dss-4.0")
        .order_by("position")
        .first()
    ) or Control.objects.filter(pk__in=RuleControl.objects.values("control")).first()
    latest = Event.objects.order_by("-id").values_list("pk", flat=True).first()
    deny = Event.objects.filter(kind="decision", outcome="deny").order_by("-id").first()
    slug = control.framework.slug
    return [
        ("executive, 90 days", "/dashboards/executive?days=90"),
        ("executive, 365 days", "/dashboards/executive?days=365"),
        ("on-call, 6 h", "/dashboards/oncall"),
        ("on-call, 72 h", "/dashboards/oncall?hours=72"),
        ("on-call panels (refresh)", "/dashboards/oncall/panels"),
        ("frameworks", "/frameworks"),
        ("framework, 30 days", f"/frameworks/{slug}"),
        ("framework, 365 days", f"/frameworks/{slug}?days=365"),
        ("control", f"/frameworks/{slug}/controls/{control.code}"),
        ("rules", "/rules"),
        ("rule, 30 days", f"/rules/{rule.pk}"),
        ("events", "/events"),
        ("events of a rule, denies", f"/events?rule={rule.name}&outcome=deny"),
        ("events, text search", "/events?q=payments"),
        ("one event", f"/events/{latest}"),
        ("one denied decision", f"/events/{deny.pk}"),
    ]


def time_page(client, path: str, runs: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(path)  # warm-up
    if response.status_code != 200:
        raise machinery.BenchError(f"{path} answered {response.status_code}")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
            response.content  # noqa: B018 (render the whole body)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "queries": len(queries),
        "bytes": len(response.content),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/posture_slis_bench"
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="posture-bench-pages-") as tmp:
        os.environ.update(ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="false")
        dataset.django_setup(args.database_url, Path(tmp))
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command
        from django.test import Client

        from audit.models import Event

        call_command("migrate", verbosity=0, interactive=False)
        # As in production (DEBUG off): hashed static names come from collectstatic's manifest.
        call_command("collectstatic", verbosity=0, interactive=False)
        events = Event.objects.count()
        if events < 1000:
            print("no data set here: run `make bench-slis` first", file=sys.stderr)
            return 1
        user, _ = User.objects.get_or_create(username="bench-admin")
        user.groups.add(Group.objects.get_or_create(name="admin")[0])
        client = Client()
        client.force_login(user)
        results = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "events": events,
            "code": machinery.git_state(),
            "pages": {},
        }
        print(f"{events:,} events in {machinery.database_name(args.database_url)}\n")
        print(f"{'page':<28}{'median ms':>10}{'max ms':>9}{'queries':>9}")
        failed = 0
        for name, path in pages():
            figures = time_page(client, path, args.runs)
            results["pages"][name] = {"path": path, **figures}
            verdict = "" if figures["median_ms"] < BAR_MS else "  FAIL"
            failed += bool(verdict)
            print(
                f"{name:<28}{figures['median_ms']:>10.1f}{figures['max_ms']:>9.1f}"
                f"{figures['queries']:>9}{verdict}"
            )
    verdict = "PASS" if not failed else f"FAIL ({failed} pages)"
    print(f"\n{verdict}  every page under {BAR_MS:.0f} ms (median of {args.runs})")
    machinery.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = machinery.RESULTS_DIR / f"pages-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path.relative_to(machinery.REPO)}")
    return 0


if __name__ == "__main__":
    os.chdir(machinery.REPO)
    sys.exit(main())
