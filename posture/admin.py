from django.contrib import admin

from posture.models import PersonalToken


@admin.register(PersonalToken)
class PersonalTokenAdmin(admin.ModelAdmin):
    """Revoke or shorten people's API tokens; new ones come from create_api_token."""

    list_display = ["user", "label", "token_prefix", "created_at", "expires_at", "revoked_at"]
    fields = ["user", "label", "token_prefix", "created_at", "expires_at", "revoked_at"]
    readonly_fields = ["user", "token_prefix", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
