from rest_framework import serializers

from audit.canonical import canonical_loads
from audit.models import Checkpoint, Event, VerificationRun


class EventSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name")
    payload = serializers.SerializerMethodField(help_text="The stored event, as hashed.")

    class Meta:
        model = Event
        fields = [
            "id",
            "source",
            "seq",
            "event_id",
            "kind",
            "occurred_at",
            "received_at",
            "policy",
            "rule",
            "policy_version",
            "outcome",
            "mode",
            "enforced",
            "latency_ms",
            "status",
            "environment",
            "service",
            "namespace",
            "resource",
            "subject",
            "action",
            "severity",
            "detected_at",
            "reason",
            "trace_id",
            "source_seq",
            "source_epoch",
            "prev_hash",
            "hash",
            "payload",
        ]

    def get_payload(self, event: Event) -> dict:
        return canonical_loads(bytes(event.canonical))["event"]


class CheckpointSerializer(serializers.ModelSerializer):
    body = serializers.SerializerMethodField(help_text="The exact signed bytes, as text.")

    class Meta:
        model = Checkpoint
        fields = ["number", "created_at", "hash", "prev_hash", "signature", "public_key", "body"]

    def get_body(self, checkpoint: Checkpoint) -> str:
        return bytes(checkpoint.body).decode()


class VerificationRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = VerificationRun
        fields = ["id", "started_at", "finished_at", "status", "source_name", "result"]


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    first_seq = serializers.IntegerField(allow_null=True)
    last_seq = serializers.IntegerField(allow_null=True)
    head = serializers.DictField()


class IngestErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    events = serializers.ListField(child=serializers.DictField(), required=False)
