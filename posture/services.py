"""Writes of the posture domain: people and their API tokens."""

import secrets
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, Group

from audit.services import token_digest
from posture.models import PersonalToken
from posture.roles import ROLES

PERSONAL_TOKEN_PREFIX = "ptk_"  # noqa: S105 (a public prefix, not a secret)


def personal_token_create(
    *, user: AbstractBaseUser, label: str = "", expires_at: datetime | None = None
) -> tuple[PersonalToken, str]:
    """A new API token for a person; the plain token is returned once and never stored."""
    plain = PERSONAL_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = PersonalToken.objects.create(
        user=user,
        label=label,
        token_hash=token_digest(plain),
        token_prefix=plain[:10],
        expires_at=expires_at,
    )
    return token, plain


def roles_ensure() -> None:
    """Create the role groups that are missing (run after every migrate)."""
    for name in ROLES:
        Group.objects.get_or_create(name=name)
