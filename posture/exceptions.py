"""Exceptions (waivers): the state machine, its notifications and the OPA bundle.

    requested ──approve (1, or 2 for critical rules)──▶ approved ──expiry──▶ expired
        └──reject──▶ rejected                              └──revoke──▶ revoked

Every transition is one service: atomic, the exception row locked, a timestamp, and a ledger
event of Posture's own chain. Approved means active only until expires_at, judged whenever it
is read (`exception_is_active`, `PolicyException.objects.active`): a stopped worker never
extends a waiver. The expiry job only catches the stored state up and sends the notices.
"""

import fnmatch
import gzip
import hashlib
import io
import logging
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from audit.canonical import canonical_json, format_timestamp
from audit.models import EventKind
from audit.services import internal_event_append
from posture.models import (
    ExceptionApproval,
    ExceptionNotification,
    ExceptionState,
    NotificationKind,
    PolicyException,
    Rule,
    Severity,
)
from posture.roles import Role, user_has_role

logger = logging.getLogger(__name__)

REQUESTERS = (Role.ENGINEER, Role.ADMIN)
APPROVERS = (Role.APPROVER, Role.ADMIN)
MAX_TEXT = 4000
SYSTEM_SUBJECT = "posture"
BUNDLE_ROOT = "posture/exceptions"


class ExceptionRefused(Exception):
    """A request or transition that is not allowed; nothing was written. `field` names the
    input at fault, when one is."""

    def __init__(self, message: str, *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.field = field


class ExceptionForbidden(ExceptionRefused):
    """The person may not take this step on this exception (not a matter of the input)."""


def max_days(rule: Rule) -> int:
    """The longest duration an exception of `rule` may ask for, by the rule's severity."""
    limits = settings.POSTURE_EXCEPTION_MAX_DAYS
    return limits.get(rule.severity or "", limits.get("", 90))


def approvals_needed(rule: Rule) -> int:
    """Four eyes for every rule; six for critical ones."""
    return 2 if rule.severity == Severity.CRITICAL else 1


def exception_is_active(exception: PolicyException, at: datetime) -> bool:
    return exception.is_active(at)


def exception_covers(
    exception: PolicyException, *, environment: str, service: str, resource: str
) -> bool:
    """Whether a decision's scope falls under the exception (empty scope fields match all)."""
    return (
        (not exception.environment or exception.environment == environment)
        and (not exception.service or exception.service == service)
        and fnmatch.fnmatchcase(resource or "", exception.resource_pattern or "*")
    )


def exception_period_end(exception: PolicyException) -> datetime:
    """When the exception stopped (or will stop) being in force: revocation or expiry."""
    if exception.state == ExceptionState.REVOKED and exception.ended_at is not None:
        return exception.ended_at
    return exception.expires_at


def exception_used(exception: PolicyException) -> int:
    """How many decisions the exception covered: those of its rule and scope in its period."""
    from audit.models import Event

    if exception.active_from is None:
        return 0

    def named(field: str, value: str) -> Q:
        # Rules are (policy, name) with "" for a field the events leave out (NULL).
        return Q(**{field: value}) if value else Q(**{field: ""}) | Q(**{f"{field}__isnull": True})

    decisions = Event.objects.filter(
        named("policy", exception.rule.policy),
        named("rule", exception.rule.name),
        kind=EventKind.DECISION,
        occurred_at__gte=exception.active_from,
        occurred_at__lt=exception_period_end(exception),
    )
    if exception.environment:
        decisions = decisions.filter(environment=exception.environment)
    if exception.service:
        decisions = decisions.filter(Q(service=exception.service) | Q(namespace=exception.service))
    return sum(
        1
        for resource in decisions.values_list("resource", flat=True).iterator()
        if fnmatch.fnmatchcase(resource or "", exception.resource_pattern or "*")
    )


class RuleException(TypedDict):
    exception: PolicyException
    state: str
    used: int


def rule_exceptions(*, rule: Rule, limit: int = 10, at: datetime | None = None) -> list:
    """A rule's newest exceptions, each with its state now and the decisions it covered."""
    at = _now(at)
    newest = PolicyException.objects.filter(rule=rule).order_by("-created_at")[:limit]
    return [
        RuleException(exception=item, state=item.state_at(at), used=exception_used(item))
        for item in newest.select_related("rule", "requester")
    ]


# ---------------------------------------------------------------------------------------------
# Transitions


def _now(at: datetime | None) -> datetime:
    return at or datetime.now(UTC)


def _ledger(
    exception: PolicyException,
    *,
    subject: str,
    before: str,
    after: str,
    comment: str = "",
    **extra,
) -> None:
    rule = exception.rule
    internal_event_append(
        kind=EventKind.EXCEPTION_TRANSITION,
        subject=subject,
        attributes={
            "exception": exception.pk,
            "from": before,
            "to": after,
            "comment": comment,
            "resource_pattern": exception.resource_pattern,
            **extra,
        },
        action=after,
        policy=rule.policy or None,
        rule=rule.name or None,
        environment=exception.environment or None,
        service=exception.service or None,
    )


def _locked(exception: PolicyException) -> PolicyException:
    return PolicyException.objects.select_for_update().select_related("rule").get(pk=exception.pk)


def _check_text(value: str, field: str, *, required: bool = False) -> None:
    if required and not value.strip():
        raise ExceptionRefused("this field is required", field=field)
    if len(value) > MAX_TEXT:
        raise ExceptionRefused(f"longer than {MAX_TEXT} characters", field=field)


def exception_request(
    *,
    rule: Rule,
    requester: AbstractBaseUser,
    justification: str,
    duration_days: int,
    environment: str = "",
    service: str = "",
    resource_pattern: str = "*",
    ticket_url: str = "",
    extends: PolicyException | None = None,
    at: datetime | None = None,
) -> PolicyException:
    """Ask for an exception; an extension is a new request that links the one it extends."""
    if not user_has_role(requester, *REQUESTERS):
        raise ExceptionForbidden("only engineers and admins request exceptions")
    _check_text(justification, "justification", required=True)
    limit = max_days(rule)
    if duration_days < 1 or duration_days > limit:
        severity = rule.severity or "unknown severity"
        raise ExceptionRefused(
            f"between 1 and {limit} days for a {severity} rule", field="duration_days"
        )
    if not (resource_pattern or "").strip():
        resource_pattern = "*"
    now = _now(at)
    with transaction.atomic():
        if extends is not None:
            extends = PolicyException.objects.select_for_update().get(pk=extends.pk)
            if extends.rule_id != rule.pk:
                raise ExceptionRefused("an extension is for the same rule", field="extends")
            if extends.state not in (ExceptionState.APPROVED, ExceptionState.EXPIRED):
                raise ExceptionRefused(
                    "only an approved or expired exception can be extended", field="extends"
                )
        exception = PolicyException(
            rule=rule,
            environment=environment.strip(),
            service=service.strip(),
            resource_pattern=resource_pattern.strip(),
            justification=justification.strip(),
            ticket_url=ticket_url.strip(),
            duration_days=duration_days,
            requester=requester,
            created_at=now,
            extends=extends,
        )
        exception.full_clean()
        exception.save()
        _ledger(
            exception,
            subject=requester.get_username(),
            before="",
            after=ExceptionState.REQUESTED,
            comment=exception.justification,
            duration_days=duration_days,
            extends=extends.pk if extends else None,
        )
        _notify_after_commit(exception, NotificationKind.REQUESTED)
    return exception


def _check_decider(exception: PolicyException, user: AbstractBaseUser) -> None:
    if not user_has_role(user, *APPROVERS):
        raise ExceptionForbidden("only approvers decide on exceptions")
    if user.pk == exception.requester_id:
        raise ExceptionForbidden("the requester cannot decide on their own exception")


def _check_state(exception: PolicyException, wanted: str, at: datetime) -> None:
    current = exception.state_at(at)
    if current != wanted:
        raise ExceptionRefused(f"the exception is {current}, not {wanted}", field="state")


def exception_approve(
    *,
    exception: PolicyException,
    approver: AbstractBaseUser,
    comment: str = "",
    at: datetime | None = None,
) -> PolicyException:
    """Record an approval; the last one needed makes the exception active from now."""
    _check_text(comment, "comment")
    now = _now(at)
    with transaction.atomic():
        exception = _locked(exception)
        _check_state(exception, ExceptionState.REQUESTED, now)
        _check_decider(exception, approver)
        if exception.approvals.filter(approver=approver).exists():
            raise ExceptionRefused("you have approved this exception already", field="state")
        ExceptionApproval.objects.create(
            exception=exception,
            approver=approver,
            requester_id=exception.requester_id,
            decided_at=now,
            comment=comment,
        )
        given, needed = exception.approvals.count(), approvals_needed(exception.rule)
        if given < needed:
            _ledger(
                exception,
                subject=approver.get_username(),
                before=ExceptionState.REQUESTED,
                after=ExceptionState.REQUESTED,
                comment=comment,
                approvals=given,
                approvals_needed=needed,
            )
            return exception
        exception.state = ExceptionState.APPROVED
        exception.decided_at = exception.active_from = now
        exception.decided_by = approver
        exception.decision_comment = comment
        exception.expires_at = now + timedelta(days=exception.duration_days)
        exception.save()
        _ledger(
            exception,
            subject=approver.get_username(),
            before=ExceptionState.REQUESTED,
            after=ExceptionState.APPROVED,
            comment=comment,
            approvals=given,
            approvals_needed=needed,
            expires_at=format_timestamp(exception.expires_at),
        )
        _notify_after_commit(exception, NotificationKind.DECIDED)
    return exception


def exception_reject(
    *,
    exception: PolicyException,
    approver: AbstractBaseUser,
    comment: str,
    at: datetime | None = None,
) -> PolicyException:
    _check_text(comment, "comment", required=True)
    now = _now(at)
    with transaction.atomic():
        exception = _locked(exception)
        _check_state(exception, ExceptionState.REQUESTED, now)
        _check_decider(exception, approver)
        exception.state = ExceptionState.REJECTED
        exception.decided_at = now
        exception.decided_by = approver
        exception.decision_comment = comment
        exception.save()
        _ledger(
            exception,
            subject=approver.get_username(),
            before=ExceptionState.REQUESTED,
            after=ExceptionState.REJECTED,
            comment=comment,
        )
        _notify_after_commit(exception, NotificationKind.DECIDED)
    return exception


def exception_revoke(
    *,
    exception: PolicyException,
    user: AbstractBaseUser,
    comment: str,
    at: datetime | None = None,
) -> PolicyException:
    """End an active exception early: its requester or an approver may."""
    _check_text(comment, "comment", required=True)
    now = _now(at)
    with transaction.atomic():
        exception = _locked(exception)
        if user.pk != exception.requester_id and not user_has_role(user, *APPROVERS):
            raise ExceptionForbidden("only the requester or an approver revokes an exception")
        _check_state(exception, ExceptionState.APPROVED, now)
        exception.state = ExceptionState.REVOKED
        exception.ended_at = now
        exception.ended_by = user
        exception.save()
        _ledger(
            exception,
            subject=user.get_username(),
            before=ExceptionState.APPROVED,
            after=ExceptionState.REVOKED,
            comment=comment,
        )
    return exception


def exceptions_expire(*, at: datetime | None = None) -> int:
    """Mark approved exceptions past their expiry as expired; how many were."""
    now = _now(at)
    expired = 0
    with transaction.atomic():
        lapsed = (
            PolicyException.objects.lapsed(now)
            .select_for_update(skip_locked=True)
            .select_related("rule")
            .order_by("pk")
        )
        for exception in lapsed:
            exception.state = ExceptionState.EXPIRED
            exception.ended_at = exception.expires_at
            exception.save()
            _ledger(
                exception,
                subject=SYSTEM_SUBJECT,
                before=ExceptionState.APPROVED,
                after=ExceptionState.EXPIRED,
                expires_at=format_timestamp(exception.expires_at),
            )
            _notify_after_commit(exception, NotificationKind.EXPIRED)
            expired += 1
    return expired


# Notices before the end, each sent once, and only when the exception lasts longer than the
# notice's lead (a one-day exception gets no three-day warning).
EXPIRING_NOTICES = (
    (NotificationKind.EXPIRING_3D, timedelta(days=3)),
    (NotificationKind.EXPIRING_1D, timedelta(days=1)),
)


def exceptions_notify_expiring(*, at: datetime | None = None) -> int:
    """Queue the expiring-soon notices that are due; how many were queued."""
    now = _now(at)
    queued = 0
    for kind, lead in EXPIRING_NOTICES:
        due = (
            PolicyException.objects.active(now)
            .filter(expires_at__lte=now + lead, duration_days__gt=lead.days)
            .exclude(notifications__kind=kind)
        )
        for exception in due:
            _notify_after_commit(exception, kind)
            queued += 1
    return queued


# ---------------------------------------------------------------------------------------------
# Notifications: dispatched after commit through Celery, recorded once per (exception, kind).


def _notify_after_commit(exception: PolicyException, kind: str) -> None:
    exception_id = exception.pk
    transaction.on_commit(lambda: _enqueue(exception_id, kind), robust=True)


def _enqueue(exception_id: int, kind: str) -> None:
    from posture.tasks import exception_notify_task  # tasks import this module

    try:
        exception_notify_task.delay(exception_id, kind)
    except Exception:
        # The transition is committed; a lost notice is logged, never the caller's failure.
        logger.warning("could not send the %s notice of exception %s", kind, exception_id)


def _recipients(exception: PolicyException, kind: str) -> list[str]:
    if kind == NotificationKind.REQUESTED:
        people = (
            get_user_model()
            .objects.filter(groups__name=Role.APPROVER, is_active=True)
            .exclude(pk=exception.requester_id)
            .exclude(email="")
            .distinct()
        )
        return sorted({person.email for person in people})
    email = exception.requester.email
    return [email] if email else []


def _message(exception: PolicyException, kind: str) -> tuple[str, str]:
    rule = exception.rule.label
    scope = exception_scope_text(exception)
    if kind == NotificationKind.REQUESTED:
        subject = f"Exception #{exception.pk} requested for {rule}"
        body = (
            f"{exception.requester.get_username()} asks for {exception.duration_days} days "
            f"on {scope}.\n\nJustification: {exception.justification}\n"
        )
    elif kind == NotificationKind.DECIDED:
        subject = f"Exception #{exception.pk} for {rule} was {exception.state}"
        body = f"Decision: {exception.state}.\nComment: {exception.decision_comment}\n"
        if exception.expires_at:
            body += f"Active until {format_timestamp(exception.expires_at)}.\n"
    elif kind == NotificationKind.EXPIRED:
        subject = f"Exception #{exception.pk} for {rule} has expired"
        body = f"The exception on {scope} ended at {format_timestamp(exception.expires_at)}.\n"
    else:
        subject = f"Exception #{exception.pk} for {rule} is {NotificationKind(kind).label}"
        body = (
            f"The exception on {scope} ends at {format_timestamp(exception.expires_at)}. "
            "Request an extension if it is still needed.\n"
        )
    return subject, body


def exception_scope_text(exception: PolicyException) -> str:
    return (
        f"environment {exception.environment or 'any'}, service {exception.service or 'any'}, "
        f"resources {exception.resource_pattern}"
    )


def exception_notify(*, exception_id: int, kind: str) -> bool:
    """Send one notice, unless it was sent already; whether it was sent now.

    The record and the mail share a transaction: a failed send rolls the record back, so a
    retry sends it; a redelivered task finds the record and sends nothing.
    """
    exception = (
        PolicyException.objects.select_related("rule", "requester").filter(pk=exception_id).first()
    )
    if exception is None:
        return False
    recipients = _recipients(exception, kind)
    with transaction.atomic():
        try:
            with transaction.atomic():
                ExceptionNotification.objects.create(
                    exception=exception,
                    kind=kind,
                    sent_at=datetime.now(UTC),
                    recipients=recipients,
                )
        except IntegrityError:
            return False
        if recipients:
            subject, body = _message(exception, kind)
            send_mail(subject, body, None, recipients)
    return True


# ---------------------------------------------------------------------------------------------
# Reads


def exceptions_filtered(
    queryset: QuerySet, *, filters: dict, user: AbstractBaseUser, at: datetime
) -> QuerySet:
    """The list filters, shared by the page and the API. `state` reads expiry at `at`."""
    if filters.get("rule"):
        queryset = queryset.filter(rule_id=filters["rule"])
    if filters.get("team"):
        queryset = queryset.filter(rule__owner_team=filters["team"])
    if filters.get("mine"):
        queryset = queryset.filter(requester=user)
    state = filters.get("state")
    if state == ExceptionState.APPROVED:
        queryset = queryset.active(at)
    elif state == ExceptionState.EXPIRED:
        queryset = queryset.filter(
            Q(state=ExceptionState.EXPIRED) | Q(state=ExceptionState.APPROVED, expires_at__lte=at)
        )
    elif state:
        queryset = queryset.filter(state=state)
    return queryset


# ---------------------------------------------------------------------------------------------
# What enforcement points read: the active exceptions, as JSON and as an OPA bundle.


class ActiveException(TypedDict):
    id: int
    policy: str
    rule: str
    environment: str
    service: str
    resource: str
    active_from: str
    expires_at: str


def exceptions_active_data(*, at: datetime | None = None) -> list[ActiveException]:
    now = _now(at)
    active = PolicyException.objects.active(now).select_related("rule").order_by("pk")
    return [
        {
            "id": exception.pk,
            "policy": exception.rule.policy,
            "rule": exception.rule.name,
            "environment": exception.environment,
            "service": exception.service,
            "resource": exception.resource_pattern,
            "active_from": format_timestamp(exception.active_from),
            "expires_at": format_timestamp(exception.expires_at),
        }
        for exception in active
    ]


@dataclass(frozen=True)
class Bundle:
    revision: str
    data: dict
    body: bytes


def exceptions_revision(data: dict) -> str:
    """A hash of exactly what the bundle says: it changes when, and only when, the set does."""
    return hashlib.sha256(canonical_json(data)).hexdigest()


def exceptions_bundle(*, at: datetime | None = None) -> Bundle:
    """The active exceptions as an OPA bundle (tar.gz): `.manifest` and the data under the root
    posture/exceptions, so Rego reads `data.posture.exceptions.active`. Byte-identical for the
    same data (fixed times, sorted members)."""
    data = {"active": exceptions_active_data(at=at)}
    revision = exceptions_revision(data)
    manifest = {"revision": revision, "roots": [BUNDLE_ROOT]}
    members = [
        (".manifest", orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)),
        (f"{BUNDLE_ROOT}/data.json", orjson.dumps(data, option=orjson.OPT_SORT_KEYS)),
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return Bundle(revision=revision, data=data, body=compressed.getvalue())
