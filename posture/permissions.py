from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

from audit.models import SourceToken
from posture.roles import ROLES, user_has_role


class IsPerson(BasePermission):
    """A signed-in person with at least one role."""

    message = "sign in, or send a personal API token, as a person with a Posture role"

    def has_permission(self, request, view) -> bool:
        return user_has_role(request.user, *ROLES)


def has_role(*roles: str) -> type[BasePermission]:
    """A permission class that admits people holding any of `roles`."""

    class HasRole(BasePermission):
        message = f"needs the role {' or '.join(roles)}"

        def has_permission(self, request, view) -> bool:
            return user_has_role(request.user, *roles)

    return HasRole


class IsSource(BasePermission):
    """An enforcement point authenticated by its source token."""

    message = "send the source's token as Authorization: Bearer pst_…"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, SourceToken)


class IsSignedInOrSource(BasePermission):
    """Anyone with credentials: a signed-in person (any role or none) or a source token."""

    message = "sign in or send a token"

    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated or isinstance(request.auth, SourceToken)


def role_required(*roles: str) -> Callable:
    """For pages: sign-in first, then one of `roles` (all roles when none are named)."""
    wanted = roles or ROLES

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_role(request.user, *wanted):
                raise PermissionDenied(f"this page needs the role {' or '.join(wanted)}")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
