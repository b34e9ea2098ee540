"""The on-call dashboard: now and the last 6, 24 or 72 hours, refreshed every 30 seconds."""

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from posture import charts
from posture.context import ONCALL_PAGE_ROLES
from posture.pages import render_page
from posture.permissions import role_required
from posture.selectors import window_last
from posture.selectors_oncall import OncallReport, oncall_report

HOURS = (6, 24, 72)
DEFAULT_HOURS = 6
LEVEL_COLOURS = {"critical": "#8E0F0F", "warning": "#D55E00", "info": "#57606A", "ok": "#0072B2"}


def _hours(request: HttpRequest) -> int:
    try:
        hours = int(request.GET.get("hours", DEFAULT_HOURS))
    except ValueError:
        return DEFAULT_HOURS
    return hours if hours in HOURS else DEFAULT_HOURS


def _context(request: HttpRequest) -> dict:
    hours = _hours(request)
    now = datetime.now(UTC)
    report = oncall_report(window=window_last(hours=hours, now=now), now=now)
    return {
        "hours": hours,
        "choices": HOURS,
        "report": report,
        "charts": _charts(report),
        "recent_empty": not any(bucket.decisions for bucket in report.recent),
        "links": _links(report),
        "rule_links": [
            {"label": r.label or f"rule {r.rule_id}", "url": reverse("rule", args=[r.rule_id])}
            for r in report.rules
        ],
        "service_links": [
            {
                "label": service or "(no service)",
                "url": _events_link(report, kind="decision", outcome="deny", service=service),
            }
            for service, _ in report.services
        ],
    }


@role_required(*ONCALL_PAGE_ROLES)
@require_GET
def oncall_dashboard(request: HttpRequest) -> HttpResponse:
    panels = "posture/_partials/oncall_panels.html"
    return render_page(request, "posture/oncall.html", panels, _context(request))


@role_required(*ONCALL_PAGE_ROLES)
@require_GET
def oncall_panels(request: HttpRequest) -> HttpResponse:
    """The panels alone: what the page polls every 30 seconds."""
    return render(request, "posture/_partials/oncall_panels.html", _context(request))


def _events_link(report: OncallReport, **filters: str) -> str:
    since = report.window.start.strftime("%Y-%m-%dT%H:%M")
    return reverse("events") + "?" + urlencode({**filters, "since": since})


def _links(report: OncallReport) -> dict[str, str]:
    return {
        "denies": _events_link(report, kind="decision", outcome="deny"),
        "remediations_failed": _events_link(report, kind="remediation", status="failed"),
        "remediations": _events_link(report, kind="remediation"),
        "heartbeats": _events_link(report, kind="heartbeat"),
    }


def _charts(report: OncallReport) -> dict[str, charts.Chart]:
    target = report.burn.target
    out = {
        "recent": charts.line_chart(
            chart_id="chart-deny-5m",
            title="Deny rate in 5-minute buckets, last 6 hours (UTC)",
            series=[
                charts.Series(
                    name="deny rate",
                    x=[b.start.strftime("%Y-%m-%d %H:%M") for b in report.recent],
                    y=[b.rate for b in report.recent],
                )
            ],
            percent=True,
            target=target,
        )
    }
    if report.hourly is not None:
        hours = len(report.hourly)
        out["hourly"] = charts.line_chart(
            chart_id="chart-deny-hourly",
            title=f"Deny rate by hour, last {hours} hours (UTC)",
            series=[
                charts.Series(
                    name="deny rate",
                    x=[b.start.strftime("%Y-%m-%d %H:%M") for b in report.hourly],
                    y=[b.rate for b in report.hourly],
                )
            ],
            percent=True,
            target=target,
        )
    if report.rules:
        out["rules"] = charts.bar_chart(
            chart_id="chart-top-rules",
            title="Top rules by denies",
            # Rule names alone (the table has policy/name): long labels squeeze the bars on phones.
            labels=_rule_labels(report),
            values=[r.denies for r in report.rules],
            value_title="denies",
            links=[reverse("rule", args=[r.rule_id]) for r in report.rules],
            colours=[charts.SEVERITY_COLOURS.get(r.severity, "#57606A") for r in report.rules],
        )
    if report.services:
        out["services"] = charts.bar_chart(
            chart_id="chart-top-services",
            title="Top services by denies",
            labels=[service or "(no service)" for service, _ in report.services],
            values=[n for _, n in report.services],
            value_title="denies",
            links=[
                _events_link(report, kind="decision", outcome="deny", service=service)
                for service, _ in report.services
            ],
        )
    if report.reasons.counts:
        out["reasons"] = charts.bar_chart(
            chart_id="chart-deny-reasons",
            title=f"Top deny reasons (newest {report.reasons.sampled:,} denies)",
            labels=[_short(reason, 40) for reason, _ in report.reasons.counts],
            values=[n for _, n in report.reasons.counts],
            value_title="denies",
        )
    if report.latency:
        out["latency"] = charts.bar_chart(
            chart_id="chart-latency",
            title="Decision latency p95 by source (ms)",
            labels=[s.source for s in report.latency],
            values=[s.p95.value or 0 for s in report.latency],
            value_title="p95 ms",
            colours=[LEVEL_COLOURS[s.level] for s in report.latency],
            links=[_events_link(report, kind="decision", source=s.source) for s in report.latency],
        )
    return out


def _rule_labels(report: OncallReport) -> list[str]:
    names = [r.name or r.policy or f"rule {r.rule_id}" for r in report.rules]
    if len(set(names)) == len(names):
        return names
    return [r.label or f"rule {r.rule_id}" for r in report.rules]


def _short(text: str, length: int = 60) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
