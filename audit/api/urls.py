from django.urls import path

from audit.api import views

urlpatterns = [
    path("events", views.EventsView.as_view(), name="api-events"),
    path("events/<int:pk>", views.EventDetailView.as_view(), name="api-event"),
    path("schema/events.json", views.EventSchemaView.as_view(), name="api-event-schema"),
    path("ledger/public-key", views.PublicKeyView.as_view(), name="api-public-key"),
    path("ledger/checkpoints", views.CheckpointsView.as_view(), name="api-checkpoints"),
    path("ledger/verify", views.VerifyView.as_view(), name="api-verify"),
    path("ledger/verify/<int:pk>", views.VerificationRunView.as_view(), name="api-verify-run"),
]
