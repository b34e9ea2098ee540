from django.urls import path

from posture.api import exception_views, views

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

# Exceptions (waivers); "active" and the bundle are read by enforcement points too.
urlpatterns += [
    path("exceptions", exception_views.ExceptionsView.as_view(), name="api-exceptions"),
    path(
        "exceptions/active",
        exception_views.ActiveExceptionsView.as_view(),
        name="api-exceptions-active",
    ),
    path(
        "exceptions/bundle.tar.gz",
        exception_views.ExceptionsBundleView.as_view(),
        name="api-exceptions-bundle",
    ),
    path("exceptions/<int:pk>", exception_views.ExceptionView.as_view(), name="api-exception"),
    path(
        "exceptions/<int:pk>/approve",
        exception_views.ExceptionApproveView.as_view(),
        name="api-exception-approve",
    ),
    path(
        "exceptions/<int:pk>/reject",
        exception_views.ExceptionRejectView.as_view(),
        name="api-exception-reject",
    ),
    path(
        "exceptions/<int:pk>/revoke",
        exception_views.ExceptionRevokeView.as_view(),
        name="api-exception-revoke",
    ),
]
