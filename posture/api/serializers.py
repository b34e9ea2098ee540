import re
from datetime import UTC, datetime, time, timedelta

from rest_framework import serializers

from posture.models import Rule, TriageLabel
from posture.selectors import DAY, HOUR, SliScope, Window, window_last

_WINDOW = re.compile(r"^(\d{1,3})([dh])$")
MAX_DAYS = 400
MAX_HOURS = 7 * 24


class WindowQuerySerializer(serializers.Serializer):
    """A window as `window=30d` / `window=24h` (ending now), or as `since` and `until`."""

    window = serializers.CharField(required=False, help_text="7d, 30d, 90d, 365d, or 1h to 168h")
    since = serializers.DateTimeField(required=False, help_text="start, a whole UTC hour or day")
    until = serializers.DateTimeField(required=False, help_text="end (excluded)")

    def validate(self, attrs: dict) -> dict:
        since, until, text = attrs.get("since"), attrs.get("until"), attrs.get("window")
        if since or until:
            if text:
                raise serializers.ValidationError("give either window or since and until")
            attrs["window"] = _explicit_window(since, until)
            return attrs
        match = _WINDOW.match(text or "30d")
        if match is None:
            raise serializers.ValidationError({"window": "a number of days or hours: 30d, 24h"})
        amount, unit = int(match[1]), match[2]
        if unit == "d" and not 1 <= amount <= MAX_DAYS:
            raise serializers.ValidationError({"window": f"1d to {MAX_DAYS}d"})
        if unit == "h" and not 1 <= amount <= MAX_HOURS:
            raise serializers.ValidationError({"window": f"1h to {MAX_HOURS}h"})
        attrs["window"] = window_last(days=amount) if unit == "d" else window_last(hours=amount)
        return attrs


def _explicit_window(since: datetime | None, until: datetime | None) -> Window:
    if since is None or until is None:
        raise serializers.ValidationError("give both since and until")
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if until <= since:
        raise serializers.ValidationError({"until": "must be after since"})
    for name, moment in (("since", since), ("until", until)):
        if moment.minute or moment.second or moment.microsecond:
            raise serializers.ValidationError({name: "a whole hour (rollups are hourly)"})
    if until - since > timedelta(days=MAX_DAYS):
        raise serializers.ValidationError({"until": f"a window of at most {MAX_DAYS} days"})
    whole_days = since.time() == time.min and until.time() == time.min
    return Window(start=since, end=until, unit=DAY if whole_days else HOUR)


class SliQuerySerializer(WindowQuerySerializer):
    framework = serializers.CharField(required=False, max_length=64)
    control = serializers.RegexField(
        r"^[^:]+:.+$",
        required=False,
        max_length=200,
        help_text="framework:control, e.g. pci-dss-4.0:10.2.1",
    )
    rule = serializers.IntegerField(required=False, min_value=1)
    source = serializers.CharField(required=False, max_length=64)
    environment = serializers.CharField(required=False, max_length=128)
    service = serializers.CharField(required=False, max_length=128)

    def validate_rule(self, value: int) -> int:
        if not Rule.objects.filter(pk=value).exists():
            raise serializers.ValidationError("no such rule")
        return value

    def scope(self) -> SliScope:
        data = self.validated_data
        return SliScope(
            framework=data.get("framework", ""),
            control=data.get("control", ""),
            rule=data.get("rule"),
            source=data.get("source", ""),
            environment=data.get("environment", ""),
            service=data.get("service", ""),
        )


class TriageSerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=TriageLabel.choices)
    note = serializers.CharField(max_length=2000, allow_blank=True, default="")


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rule
        fields = [
            "id",
            "policy",
            "name",
            "title",
            "description",
            "severity",
            "category",
            "owner_team",
            "enforcement_mode",
            "remediation",
            "links",
            "catalogued",
            "created_at",
        ]
