"""Template context every page gets: the main navigation for the signed-in person's roles."""

from django.http import HttpRequest
from django.urls import reverse

from posture.roles import ROLES, Role, user_roles

EXECUTIVE_PAGE_ROLES = (Role.EXECUTIVE, Role.AUDITOR, Role.ADMIN)
ONCALL_PAGE_ROLES = (Role.ONCALL, Role.ENGINEER, Role.ADMIN)

_NAV = [
    ("Executive", "dashboard-executive", EXECUTIVE_PAGE_ROLES),
    ("On-call", "dashboard-oncall", ONCALL_PAGE_ROLES),
    ("Frameworks", "frameworks", ROLES),
    ("Rules", "rules", ROLES),
    ("Events", "events", ROLES),
    ("Exceptions", "exceptions", ROLES),
    ("API", "api-docs", ROLES),
]


def navigation(request: HttpRequest) -> dict:
    roles = user_roles(request.user)
    if not roles:
        return {"nav": []}
    links = []
    for label, name, allowed in _NAV:
        if roles & set(allowed):
            url = reverse(name)
            links.append({"label": label, "url": url, "current": request.path.startswith(url)})
    return {"nav": links}
