from django.urls import path

from audit.api import adapter_views, views

urlpatterns = [
    path("events", views.EventsView.as_view(), name="api-events"),
    path("events/<int:pk>", views.EventDetailView.as_view(), name="api-event"),
    path("schema/events.json", views.EventSchemaView.as_view(), name="api-event-schema"),
    path("ledger/public-key", views.PublicKeyView.as_view(), name="api-public-key"),
    path("ledger/checkpoints", views.CheckpointsView.as_view(), name="api-checkpoints"),
    path("ledger/verify", views.VerifyView.as_view(), name="api-verify"),
    path("ledger/verify/<int:pk>", views.VerificationRunView.as_view(), name="api-verify-run"),
    # The engines' own formats (docs/adapters.md). OPA appends /logs and /status to its
    # service URL http://HOST/api/v1/ingest/opa.
    path(
        "ingest/opa/logs",
        adapter_views.OpaDecisionLogsView.as_view(),
        name="api-ingest-opa-logs",
    ),
    path(
        "ingest/opa/status",
        adapter_views.OpaStatusView.as_view(),
        name="api-ingest-opa-status",
    ),
    path("ingest/gatekeeper", adapter_views.GatekeeperView.as_view(), name="api-ingest-gatekeeper"),
    path("ingest/kyverno", adapter_views.KyvernoView.as_view(), name="api-ingest-kyverno"),
    path("ingest/ocsf", adapter_views.OcsfView.as_view(), name="api-ingest-ocsf"),
]
