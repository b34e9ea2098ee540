"""The executive dashboard: compliance and enforcement trends over 7, 30, 90 or 365 days."""

from datetime import timedelta
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from posture import charts
from posture.context import EXECUTIVE_PAGE_ROLES
from posture.pages import render_page
from posture.permissions import role_required
from posture.selectors import Window, executive_summary, high_severity_denies, window_last

PERIODS = (7, 30, 90, 365)
DEFAULT_PERIOD = 90
# The figures shown as cards, in order, with the page that explains each one.
CARDS = (
    ("M2", "", "events-denies"),
    ("M3", "", "events-denies"),
    ("M1", "p95", "dashboard-oncall"),
    ("M5", "", "rules"),
    ("M9", "", "dashboard-oncall"),
    ("M8", "", "dashboard-oncall"),
    ("M10", "", "rules"),
    ("M4", "", "events-denies"),
)


def _period(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


def _card(figure: dict, link: str) -> dict:
    previous = figure["previous"]["value"]
    value = figure["value"]
    trend = None
    if value is not None and previous is not None and value != previous:
        trend = "up" if value > previous else "down"
    better = None
    if trend and figure.get("target"):
        better = (trend == "up") == (figure["target"]["direction"] == "at_least")
    return {**figure, "trend": trend, "better": better, "link": link}


def _link(name: str) -> str:
    if name == "events-denies":
        return reverse("events") + "?" + urlencode({"kind": "decision", "outcome": "deny"})
    return reverse(name)


@role_required(*EXECUTIVE_PAGE_ROLES)
@require_GET
def executive_dashboard(request: HttpRequest) -> HttpResponse:
    days = _period(request)
    summary = executive_summary(days=days)
    cards = [_card(_figure(summary, code, quantile), _link(link)) for code, quantile, link in CARDS]
    week = window_last(days=7)
    last_week = Window(start=week.start - timedelta(days=7), end=week.start, unit=week.unit)
    frameworks = []
    for framework in summary["frameworks"]:
        slug = framework["framework"]["slug"]
        frameworks.append({**framework, "link": reverse("framework", args=[slug])})
    context = {
        "days": days,
        "periods": PERIODS,
        "summary": summary,
        "cards": cards,
        "frameworks": frameworks,
        "high_severity": {
            "this_week": high_severity_denies(window=week),
            "last_week": high_severity_denies(window=last_week),
            "link": _link("events-denies") + "&severity=critical&severity=high",
        },
        "charts": _charts(summary, frameworks, days),
    }
    body = "posture/_partials/executive_body.html"
    return render_page(request, "posture/executive.html", body, context)


def _figure(summary: dict, code: str, quantile: str) -> dict:
    """The summary's figure for an SLI (M1 at the given quantile, named "... p95")."""
    return next(
        f
        for f in summary["figures"]
        if f["sli"] == code and (not quantile or f["name"].endswith(quantile))
    )


def _charts(summary: dict, frameworks: list[dict], days: int) -> list[charts.Chart]:
    def dates(points: list[dict]) -> list[str]:
        return [point["bucket"][:10] for point in points]

    scores = charts.line_chart(
        chart_id="chart-scores",
        title=f"Compliance score by framework, last {days} days",
        series=[
            charts.Series(
                name=f["framework"]["name"],
                x=dates(f["series"]),
                y=[point["value"] for point in f["series"]],
                links=[f["link"]] * len(f["series"]),
            )
            for f in frameworks
        ],
        y_title="score",
        percent=True,
    )
    by_code = {f["sli"]: f for f in summary["figures"] if f["sli"] in ("M2", "M3", "M9")}
    enforcement = [
        charts.line_chart(
            chart_id=f"chart-{code.lower()}",
            title=f"{by_code[code]['name'].capitalize()} by day",
            series=[
                charts.Series(
                    name=by_code[code]["name"],
                    x=dates(by_code[code]["series"]),
                    y=[point["value"] for point in by_code[code]["series"]],
                )
            ],
            percent=True,
            target=(by_code[code]["target"] or {}).get("target"),
        )
        for code in ("M2", "M3", "M9")
    ]
    return [scores, *enforcement]
