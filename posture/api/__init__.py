"""API conventions shared by every endpoint."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, with every error body carrying an `error` code and a `detail` sentence."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "error" not in response.data:
        code = getattr(exc, "default_code", "error")
        detail = response.data.get("detail", response.data)
        response.data = {"error": code, "detail": detail}
    return response
