"""Server-rendered pages: dashboards, frameworks, rules and the ledger's events."""

from django.http import HttpRequest


def is_htmx(request: HttpRequest) -> bool:
    """Whether htmx asked for a fragment of the page (it sends HX-Request: true)."""
    return request.headers.get("HX-Request") == "true"
