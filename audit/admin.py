from django.contrib import admin

from audit.models import Checkpoint, Event, Source, SourceToken


class ReadOnlyAdmin(admin.ModelAdmin):
    """The ledger is append-only: the admin may look, never change."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "environment", "owner", "heartbeat_interval_seconds"]
    readonly_fields = ["name", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False  # create_source makes the chain head and the first token with it

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SourceToken)
class SourceTokenAdmin(admin.ModelAdmin):
    list_display = ["source", "label", "token_prefix", "created_at", "expires_at", "revoked_at"]
    fields = ["source", "label", "token_prefix", "created_at", "expires_at", "revoked_at"]
    readonly_fields = ["source", "token_prefix", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["source", "seq", "kind", "event_id", "occurred_at", "rule", "outcome"]
    list_filter = ["kind", "source"]
    show_full_result_count = False


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["number", "created_at", "hash"]
