"""The drilldown from a framework's score to one rule: frameworks, a framework's control tree,
one control's rules, the rule catalogue and one rule. Every role may read them."""

from datetime import datetime
from urllib.parse import urlencode

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from posture import charts, selectors_catalogue
from posture.exceptions import rule_exceptions
from posture.models import Category, Rule, Severity
from posture.pages import render_page
from posture.permissions import role_required
from posture.selectors import ScopeUnknown, Window, framework_status, window_last

PERIODS = (7, 30, 90, 365)
DEFAULT_PERIOD = 30
# A rule's page also offers the last 24 hours, by the hour.
RULE_PERIODS = (1, *PERIODS)
RULES_PER_PAGE = 50
FRAMEWORK_BODY = "posture/_partials/framework_body.html"


def _days(request: HttpRequest, periods: tuple[int, ...] = PERIODS) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in periods else DEFAULT_PERIOD


def _window(days: int) -> Window:
    return window_last(hours=24) if days == 1 else window_last(days=days)


def _period_text(window: Window) -> str:
    """What a window covers, in words: its first and last day (or hour), UTC."""
    last = window.end - window.step
    if window.unit == "day":
        return f"{window.start:%Y-%m-%d} to {last:%Y-%m-%d} (UTC, today included)"
    return f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC, by the hour"


def _render(request: HttpRequest, page: str, fragment: str, context: dict) -> HttpResponse:
    """The whole page, or only its body when htmx swaps it in (not when htmx restores history:
    that needs the whole page). Caches keep the two apart by the HX-Request header."""
    if "window" in context:
        context["period_text"] = _period_text(context["window"])
    return render_page(request, page, fragment, context)


@role_required()
@require_GET
def frameworks(request: HttpRequest) -> HttpResponse:
    window = window_last(days=DEFAULT_PERIOD)
    statuses = selectors_catalogue.frameworks_overview(window=window)
    context = {
        "days": DEFAULT_PERIOD,
        "window": window,
        "frameworks": statuses,
        "mapping_version": statuses[0]["mapping_version"] if statuses else None,
        "chart": _scores_chart(statuses, DEFAULT_PERIOD, linked=True),
    }
    return _render(request, "posture/frameworks.html", "posture/frameworks.html", context)


@role_required()
@require_GET
def framework(request: HttpRequest, slug: str) -> HttpResponse:
    days = _days(request)
    window = window_last(days=days)
    try:
        status = framework_status(slug=slug, window=window)
    except ScopeUnknown as unknown:
        raise Http404(str(unknown)) from None
    rows = selectors_catalogue.control_tree(status)
    context = {
        "days": days,
        "periods": PERIODS,
        "window": window,
        "status": status,
        "controls": rows,
        "attention": selectors_catalogue.controls_needing_attention(rows),
        "chart": _scores_chart([status], days, linked=False),
    }
    return _render(
        request, "posture/framework.html", "posture/_partials/framework_body.html", context
    )


@role_required()
@require_GET
def control(request: HttpRequest, slug: str, code: str) -> HttpResponse:
    days = _days(request)
    window = window_last(days=days)
    try:
        detail = selectors_catalogue.control_detail(slug=slug, code=code, window=window)
    except ScopeUnknown as unknown:
        raise Http404(str(unknown)) from None
    context = {"days": days, "periods": PERIODS, "detail": detail, "window": window}
    return _render(request, "posture/control.html", "posture/_partials/control_body.html", context)


class RuleFilter(forms.Form):
    """The catalogue's filters (GET): severity, category, and only the uncatalogued."""

    severity = forms.ChoiceField(choices=[("", "any"), *Severity.choices], required=False)
    category = forms.ChoiceField(choices=[("", "any"), *Category.choices], required=False)
    uncatalogued = forms.BooleanField(required=False, label="Uncatalogued only (needs an owner)")
    page = forms.IntegerField(min_value=1, required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, label_suffix="", **kwargs)


@role_required()
@require_GET
def rules(request: HttpRequest) -> HttpResponse:
    form = RuleFilter(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    catalogue = selectors_catalogue.rules_catalogue(
        severity=filters.get("severity", ""),
        category=filters.get("category", ""),
        uncatalogued=filters.get("uncatalogued", False),
    )
    page = Paginator(catalogue, RULES_PER_PAGE).get_page(filters.get("page"))
    activity = selectors_catalogue.rules_decisions(
        rule_ids=[rule.pk for rule in page], window=window_last(days=DEFAULT_PERIOD)
    )
    context = {
        "form": form,
        "page": page,
        "rows": [{"rule": rule, **activity.get(rule.pk, {})} for rule in page],
        "uncatalogued_total": selectors_catalogue.rules_uncatalogued_count(),
        "query": _query_without_page(request),
        "days": DEFAULT_PERIOD,
    }
    return _render(request, "posture/rules.html", "posture/_partials/rules_table.html", context)


@role_required()
@require_GET
def rule(request: HttpRequest, pk: int) -> HttpResponse:
    found = get_object_or_404(Rule, pk=pk)
    days = _days(request, RULE_PERIODS)
    window = _window(days)
    activity = selectors_catalogue.rule_activity(rule=found, window=window)
    context = {
        "days": days,
        "periods": RULE_PERIODS,
        "rule": found,
        "window": window,
        "activity": activity,
        "versions": selectors_catalogue.rule_policy_versions(rule=found),
        "controls": selectors_catalogue.rule_controls(rule=found),
        "triage": selectors_catalogue.rule_triage(rule=found, window=window),
        "exceptions": rule_exceptions(rule=found),
        "charts": _rule_charts(found, activity, window),
        "events_link": _events_link(found, window),
        "decision_links": _decision_links(found, activity, window),
    }
    return _render(request, "posture/rule.html", "posture/_partials/rule_body.html", context)


# ---------------------------------------------------------------------------------------------
# Charts and links


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _scores_chart(statuses: list[dict], days: int, *, linked: bool) -> charts.Chart | None:
    """The daily score of each framework; on the list, a point opens its framework. None when
    no day has a score (the page says why instead)."""
    if not any(point["value"] is not None for s in statuses for point in s["series"]):
        return None
    return charts.line_chart(
        chart_id="chart-framework-score",
        title=f"Compliance score by day, last {days} days",
        series=[
            charts.Series(
                name=status["framework"]["name"],
                x=[point["bucket"][:10] for point in status["series"]],
                y=[point["value"] for point in status["series"]],
                links=[reverse("framework", args=[status["framework"]["slug"]]) + f"?days={days}"]
                * len(status["series"])
                if linked
                else None,
            )
            for status in statuses
        ],
        y_title="score",
        percent=True,
    )


# Outcomes in the colour-blind safe palette, a deny in the colour of alarm.
OUTCOME_COLOURS = {
    "allow": "#009E73",
    "deny": "#D55E00",
    "warn": "#E69F00",
    "error": "#8E0F0F",
    "audit": "#0072B2",
    "mutate": "#CC79A7",
}
POINT_LINKS_MAX = 90


def _outcome_colour(outcome: str) -> str:
    return OUTCOME_COLOURS.get(outcome, "#57606A")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _events_link(rule: Rule, window: Window, **filters: str) -> str:
    """The decisions of this rule in the ledger's event list (/events), narrowed by `filters`.

    The list filters events by the names they carry (audit.filtersets.EventFilterSet): a rule is
    its (policy, rule) pair there, and a blank one is no filter."""
    query = {
        "kind": "decision",
        "policy": rule.policy,
        "rule": rule.name,
        **filters,
        "since": _stamp(window.start),
        "until": _stamp(window.end),
    }
    return reverse("events") + "?" + urlencode({k: v for k, v in query.items() if v})


def _decision_links(
    rule: Rule, activity: selectors_catalogue.RuleActivity, window: Window
) -> list[dict]:
    """The bars of the outcome and service charts as links, for keyboards and screen readers."""
    links = [
        {"label": outcome, "count": n, "url": _events_link(rule, window, outcome=outcome)}
        for outcome, n in activity.by_outcome
    ]
    links += [
        {"label": f"in {service}", "count": n, "url": _events_link(rule, window, service=service)}
        for service, n in activity.by_service
        if service
    ]
    return links


def _labels_fit(chart: charts.Chart) -> charts.Chart:
    """Bars leave their labels only the room they need (automargin), which a phone needs."""
    chart.figure["layout"]["margin"]["l"] = 8
    return chart


def _bucket_label(moment: datetime, window: Window) -> str:
    return moment.strftime("%Y-%m-%d" if window.unit == "day" else "%Y-%m-%d %H:%M")


def _rule_charts(
    rule: Rule, activity: selectors_catalogue.RuleActivity, window: Window
) -> dict[str, charts.Chart]:
    x = [_bucket_label(bucket, window) for bucket in activity.buckets]
    # A point opens that day's (or hour's) decisions; a year of links would weigh too much.
    linked = len(activity.buckets) <= POINT_LINKS_MAX
    unit = "day" if window.unit == "day" else "hour"
    counters = charts.line_chart(
        chart_id="chart-rule-decisions",
        title=f"Decisions by outcome, per {unit}",
        series=[
            charts.Series(
                name=outcome,
                x=x,
                y=values,
                links=[
                    _events_link(rule, Window(b, b + window.step, window.unit), outcome=outcome)
                    for b in activity.buckets
                ]
                if linked
                else None,
            )
            for outcome, values in activity.by_outcome_series.items()
        ],
        y_title="decisions",
    )
    # The same colour for an outcome in both charts.
    for trace, outcome in zip(counters.figure["data"], activity.by_outcome_series, strict=True):
        trace["line"]["color"] = _outcome_colour(outcome)
    return {
        "counters": counters,
        "outcomes": _labels_fit(
            charts.bar_chart(
                chart_id="chart-rule-outcomes",
                title="Decisions by outcome",
                labels=[outcome for outcome, _ in activity.by_outcome],
                values=[n for _, n in activity.by_outcome],
                value_title="decisions",
                links=[_events_link(rule, window, outcome=o) for o, _ in activity.by_outcome],
                colours=[_outcome_colour(o) for o, _ in activity.by_outcome],
            )
        ),
        "services": _labels_fit(
            charts.bar_chart(
                chart_id="chart-rule-services",
                title=f"Decisions by service (top {selectors_catalogue.SERVICES_SHOWN})",
                labels=[service or "(no service)" for service, _ in activity.by_service],
                values=[n for _, n in activity.by_service],
                value_title="decisions",
                # Decisions without a service cannot be asked for by service: no link.
                links=[
                    _events_link(rule, window, service=s) if s else ""
                    for s, _ in activity.by_service
                ],
            )
        ),
        "latency": charts.line_chart(
            chart_id="chart-rule-latency",
            title=f"Decision latency per {unit} (upper bound of the histogram bucket)",
            series=[
                charts.Series(name=name, x=x, y=values) for name, values in activity.latency.items()
            ],
            y_title="ms",
        ),
    }
