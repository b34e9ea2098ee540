"""Charts as data: numbers in, a Plotly figure (a JSON-ready dict) and its table out.

No queries and no HTML here. Pages put the figure in <script type="application/json"> and
static/js/charts.js draws it, so pages need no inline script; the table carries the same
numbers for screen readers and for anyone without the chart.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

# Colour-blind safe (Okabe-Ito), in the order series get them.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
SEVERITY_COLOURS = {
    "critical": "#8E0F0F",
    "high": "#D55E00",
    "medium": "#E69F00",
    "low": "#0072B2",
    "info": "#57606A",
    "": "#57606A",
}
_FONT = {"family": "system-ui, sans-serif", "size": 12, "color": "#1b1f24"}


@dataclass(frozen=True)
class Series:
    name: str
    x: Sequence[str]
    y: Sequence[float | None]
    links: Sequence[str] | None = None  # a page to open when a point is clicked


@dataclass(frozen=True)
class Table:
    headings: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    figure: dict
    table: Table = field(default_factory=lambda: Table([], []))


def _layout(*, y_title: str, percent: bool, height: int) -> dict:
    return {
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 8, "b": 40},
        "font": _FONT,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified",
        "xaxis": {"gridcolor": "#eaeef2"},
        "yaxis": {
            "title": {"text": y_title},
            "gridcolor": "#eaeef2",
            "tickformat": ".1%" if percent else "",
            "rangemode": "tozero",
        },
    }


def _format(value: float | None, percent: bool) -> str:
    if value is None:
        return "no data"
    return f"{value:.2%}" if percent else f"{value:,.4g}"


def line_chart(
    *,
    chart_id: str,
    title: str,
    series: Sequence[Series],
    y_title: str = "",
    percent: bool = False,
    target: float | None = None,
    height: int = 260,
) -> Chart:
    """Lines over time; `target` draws the SLO target as a dashed line."""
    traces = []
    for i, item in enumerate(series):
        trace = {
            "type": "scatter",
            "mode": "lines+markers",
            "name": item.name,
            "x": list(item.x),
            "y": list(item.y),
            "line": {"color": PALETTE[i % len(PALETTE)], "width": 2},
            "marker": {"size": 4},
            "connectgaps": False,
        }
        if item.links:
            trace["customdata"] = list(item.links)
        traces.append(trace)
    layout = _layout(y_title=y_title, percent=percent, height=height)
    if target is not None:
        layout["shapes"] = [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": target,
                "y1": target,
                "line": {"color": "#57606a", "dash": "dash", "width": 1},
            }
        ]
    headings = ["time", *(item.name for item in series)]
    x_values = list(series[0].x) if series else []
    rows = [[x, *(_format(item.y[i], percent) for item in series)] for i, x in enumerate(x_values)]
    return Chart(chart_id, title, {"data": traces, "layout": layout}, Table(headings, rows))


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    value_title: str = "",
    links: Sequence[str] | None = None,
    colours: Sequence[str] | None = None,
    percent: bool = False,
    height: int | None = None,
) -> Chart:
    """Horizontal bars, largest first as given; a bar with a link opens it when clicked."""
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": list(labels),
        "x": list(values),
        "marker": {"color": list(colours) if colours else PALETTE[0]},
        "hovertemplate": "%{y}: %{x}<extra></extra>",
    }
    if links:
        trace["customdata"] = list(links)
    layout = _layout(y_title="", percent=False, height=height or max(160, 28 * len(labels) + 60))
    layout["margin"]["l"] = 200
    layout["hovermode"] = "closest"
    layout["yaxis"] = {"autorange": "reversed", "automargin": True}
    layout["xaxis"] = {
        "title": {"text": value_title},
        "gridcolor": "#eaeef2",
        "tickformat": ".1%" if percent else "",
    }
    rows = [[label, _format(value, percent)] for label, value in zip(labels, values, strict=True)]
    return Chart(
        chart_id, title, {"data": [trace], "layout": layout}, Table(["", value_title], rows)
    )
