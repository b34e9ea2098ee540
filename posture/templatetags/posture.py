"""Formatting of figures for pages: the value with its unit, targets, and state classes."""

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_UNITS = {"ms": " ms", "seconds": " s", "minutes": " min"}


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return "no data"
    text = f"{value:.2%}"
    # Never round a shortfall up to a perfect-looking 100 %.
    return "99.99 %" if text == "100.00%" and value < 1 else text.replace("%", " %")


@register.filter
def figure_value(figure: dict) -> str:
    value = figure.get("value")
    if value is None:
        return "no data"
    if figure.get("unit") == "ratio":
        return percent(value)
    prefix = "> " if figure.get("overflow") else ""
    return f"{prefix}{value:,.4g}{_UNITS.get(figure.get('unit', ''), '')}"


@register.filter
def target_value(target: dict, unit: str) -> str:
    value = target["target"]
    return percent(value) if unit == "ratio" else f"{value:,.4g}{_UNITS.get(unit, '')}"


@register.filter
def direction(value: str) -> str:
    return "≥" if value == "at_least" else "≤"


@register.filter
def target_class(meets: bool | None) -> str:
    return {True: "ok", False: "bad"}.get(meets, "nodata")


@register.filter
def score_class(value: float | None) -> str:
    if value is None:
        return "nodata"
    return "ok" if value >= 0.9 else "warn" if value >= 0.7 else "bad"


@register.filter
def table_rows(rows: list[list]) -> SafeString:
    """<tr><td>...</td></tr> for each row, every cell escaped as {{ cell }} would be: a year of
    daily rows is thousands of cells, which the template language renders far slower (and
    django.utils.html.format_html_join, a call per cell, some 30 ms slower on a year)."""
    return mark_safe(  # noqa: S308 (every cell is escaped here)
        "".join(
            "<tr>" + "".join(f"<td>{conditional_escape(cell)}</td>" for cell in row) + "</tr>"
            for row in rows
        )
    )
