"""How the OpenAPI document describes Posture's bearer tokens."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SourceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "posture.authentication.SourceTokenAuthentication"
    name = "sourceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A source token (pst_…) from `manage.py create_source`: writes events.",
        }


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "posture.authentication.PersonalTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A person's API token (ptk_…). Reads, with that person's roles.",
        }
