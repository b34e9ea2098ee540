"""The people who use Posture, as Django groups. docs/roles.md is the matrix of who may do what."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Role:
    EXECUTIVE = "executive"
    AUDITOR = "auditor"
    ENGINEER = "engineer"
    APPROVER = "approver"
    ONCALL = "oncall"
    ADMIN = "admin"


ROLES = (Role.EXECUTIVE, Role.AUDITOR, Role.ENGINEER, Role.APPROVER, Role.ONCALL, Role.ADMIN)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The roles of a user; a superuser is an admin. Cached on the user for the request."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_posture_roles", None)
    if cached is None:
        names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        if user.is_superuser:
            names.add(Role.ADMIN)
        cached = frozenset(names)
        user._posture_roles = cached
    return cached


def user_has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
