from django.urls import path

from posture.api import views

urlpatterns = [
    path("slis", views.SlisView.as_view(), name="api-slis"),
    path("frameworks", views.FrameworksView.as_view(), name="api-frameworks"),
    path(
        "frameworks/<str:slug>/status",
        views.FrameworkStatusView.as_view(),
        name="api-framework-status",
    ),
    path("rules", views.RulesView.as_view(), name="api-rules"),
    path("events/<int:pk>/triage", views.TriageView.as_view(), name="api-event-triage"),
]
