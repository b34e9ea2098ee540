"""Server-rendered pages: dashboards, frameworks, rules and the ledger's events."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def is_htmx(request: HttpRequest) -> bool:
    """Whether htmx asked for a fragment of the page (it sends HX-Request: true), and not to
    restore history, which needs the whole page."""
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


def render_page(request: HttpRequest, page: str, fragment: str, context: dict) -> HttpResponse:
    """The whole page, or only the fragment htmx swaps in; caches keep the two apart."""
    response = render(request, fragment if is_htmx(request) else page, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
