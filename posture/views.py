import hmac

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from audit.selectors import ledger_summary
from posture.authentication import bearer_token
from posture.metrics import metrics_text
from posture.permissions import role_required
from posture.roles import Role, user_has_role, user_roles


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """No auth: load balancers ask. Healthy = database reachable and every migration applied."""
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as error:
        return JsonResponse({"status": "unhealthy", "database": str(error)[:200]}, status=503)
    if pending:
        return JsonResponse(
            {"status": "unhealthy", "database": "ok", "pending_migrations": len(pending)},
            status=503,
        )
    return JsonResponse({"status": "ok", "database": "ok", "migrations": "applied"})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text, for a scraper holding POSTURE_METRICS_TOKEN or a signed-in admin."""
    token = bearer_token(request)
    expected = settings.POSTURE_METRICS_TOKEN
    scraper_ok = bool(expected and token and hmac.compare_digest(token, expected))
    if not scraper_ok and not user_has_role(request.user, Role.ADMIN):
        status = 403 if request.user.is_authenticated else 401
        return JsonResponse(
            {"error": "forbidden", "detail": "send the metrics token or sign in as an admin"},
            status=status,
        )
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


@role_required()
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "posture/home.html",
        {"summary": ledger_summary(), "roles": sorted(user_roles(request.user))},
    )
