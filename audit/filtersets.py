import django_filters
from django.apps import apps
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from audit.events import SEVERITIES
from audit.models import Event, EventKind


class EventFilterSet(django_filters.FilterSet):
    """Filters of the event list, shared by the API and the /events page."""

    kind = django_filters.ChoiceFilter(choices=EventKind.choices)
    source = django_filters.CharFilter(field_name="source__name")
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    q = django_filters.CharFilter(
        method="filter_text", label="Text in the resource or subject", max_length=200
    )
    severity = django_filters.MultipleChoiceFilter(
        choices=[(s, s) for s in SEVERITIES],
        method="filter_severity",
        label="Severity of the event, or of its rule in the catalogue",
    )

    class Meta:
        model = Event
        fields = [
            "kind",
            "source",
            "policy",
            "rule",
            "outcome",
            "status",
            "environment",
            "service",
            "since",
            "until",
            "q",
            "severity",
        ]

    def filter_text(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(resource__icontains=value) | Q(subject__icontains=value))

    def filter_severity(
        self, queryset: QuerySet[Event], name: str, value: list[str]
    ) -> QuerySet[Event]:
        if not value:
            return queryset
        # Decisions carry no severity of their own: the catalogue rates their rule. Looked up
        # by name, as posture (which depends on audit) owns the catalogue.
        rule_model = apps.get_model("posture", "Rule")
        rated = rule_model.objects.filter(
            policy=Coalesce(OuterRef("policy"), Value("")),
            name=Coalesce(OuterRef("rule"), Value("")),
            severity__in=value,
        )
        return queryset.filter(Q(severity__in=value) | Exists(rated))
