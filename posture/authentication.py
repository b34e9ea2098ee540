"""Bearer tokens: `pst_…` belongs to a source (it writes events), `ptk_…` to a person (reads)."""

from datetime import UTC, datetime

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from audit.selectors import source_token_usable
from audit.services import SOURCE_TOKEN_PREFIX, token_digest
from posture.models import PersonalToken
from posture.services import PERSONAL_TOKEN_PREFIX


def bearer_token(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _usable(token: PersonalToken) -> bool:
    now = datetime.now(UTC)
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


class SourceTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates an enforcement point; request.auth is its SourceToken."""

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or not token.startswith(SOURCE_TOKEN_PREFIX):
            return None
        found = source_token_usable(token_hash=token_digest(token))
        if found is None:
            raise exceptions.AuthenticationFailed("source token is unknown, revoked or expired")
        return AnonymousUser(), found

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="posture"'


class PersonalTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates a person by API token; request.user is that person."""

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or not token.startswith(PERSONAL_TOKEN_PREFIX):
            return None
        found = (
            PersonalToken.objects.select_related("user")
            .filter(token_hash=token_digest(token))
            .first()
        )
        if found is None or not _usable(found) or not found.user.is_active:
            raise exceptions.AuthenticationFailed("API token is unknown, revoked or expired")
        return found.user, found

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="posture"'
