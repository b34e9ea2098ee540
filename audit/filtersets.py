import django_filters

from audit.models import Event, EventKind


class EventFilterSet(django_filters.FilterSet):
    """Filters of the event list, shared by the API and the /events page."""

    kind = django_filters.ChoiceFilter(choices=EventKind.choices)
    source = django_filters.CharFilter(field_name="source__name")
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = [
            "kind",
            "source",
            "policy",
            "rule",
            "outcome",
            "environment",
            "service",
            "since",
            "until",
        ]
