from django.urls import path

from posture.pages import catalogue, exceptions, executive, ledger, oncall

urlpatterns = [
    path("dashboards/executive", executive.executive_dashboard, name="dashboard-executive"),
    path("dashboards/oncall", oncall.oncall_dashboard, name="dashboard-oncall"),
    path("dashboards/oncall/panels", oncall.oncall_panels, name="dashboard-oncall-panels"),
    path("frameworks", catalogue.frameworks, name="frameworks"),
    path("frameworks/<str:slug>", catalogue.framework, name="framework"),
    path("frameworks/<str:slug>/controls/<str:code>", catalogue.control, name="control"),
    path("rules", catalogue.rules, name="rules"),
    path("rules/<int:pk>", catalogue.rule, name="rule"),
    path("events", ledger.events, name="events"),
    path("events.csv", ledger.events_csv, name="events-csv"),
    path("events/<int:pk>", ledger.event, name="event"),
    path("events/<int:pk>/verify", ledger.event_verify, name="event-verify"),
    path("events/<int:pk>/triage", ledger.event_triage, name="event-triage"),
]

# Exceptions (waivers): posture/pages/exceptions.py.
urlpatterns += [
    path("exceptions", exceptions.exceptions, name="exceptions"),
    path("exceptions/new", exceptions.exception_new, name="exception-new"),
    path("exceptions/<int:pk>", exceptions.exception, name="exception"),
    path(
        "exceptions/<int:pk>/approve",
        exceptions.exception_approve_page,
        name="exception-approve",
    ),
    path("exceptions/<int:pk>/reject", exceptions.exception_reject_page, name="exception-reject"),
    path("exceptions/<int:pk>/revoke", exceptions.exception_revoke_page, name="exception-revoke"),
]
