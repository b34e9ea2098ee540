"""Exception pages: the overview (mine, waiting for me, active, expiring soon, history), the
request form, and one exception with its timeline and the approve / reject / revoke forms.

Every role reads; engineers (and admins) request; approvers (and admins) decide; the
requester or an approver revokes. The services hold the rules; these views only translate.
"""

from datetime import UTC, datetime, timedelta

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from posture.exceptions import (
    APPROVERS,
    REQUESTERS,
    ExceptionForbidden,
    ExceptionRefused,
    approvals_needed,
    exception_approve,
    exception_reject,
    exception_request,
    exception_revoke,
    exception_scope_text,
    exception_used,
    exceptions_filtered,
    max_days,
)
from posture.models import ExceptionState, PolicyException, Rule
from posture.permissions import role_required
from posture.roles import Role, user_has_role

EXPIRING_SOON = timedelta(days=3)
SECTION_SIZE = 50
REVOKERS = (Role.ENGINEER, *APPROVERS)


class ExceptionFilter(forms.Form):
    rule = forms.ModelChoiceField(
        queryset=Rule.objects.order_by("policy", "name"), required=False, empty_label="any"
    )
    state = forms.ChoiceField(choices=[("", "any"), *ExceptionState.choices], required=False)
    team = forms.CharField(required=False, max_length=128)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, label_suffix="", **kwargs)


class ExceptionRequestForm(forms.Form):
    rule = forms.ModelChoiceField(queryset=Rule.objects.order_by("policy", "name"))
    environment = forms.CharField(max_length=128, required=False)
    service = forms.CharField(max_length=128, required=False, label="Service or namespace")
    resource_pattern = forms.CharField(
        max_length=512,
        required=False,
        initial="*",
        label="Resource pattern",
        help_text="fnmatch-style, e.g. deployment/payments-*",
    )
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)
    ticket_url = forms.URLField(
        max_length=512, required=False, label="Ticket link", assume_scheme="https"
    )
    duration_days = forms.IntegerField(min_value=1, label="Duration (days)")
    extends = forms.ModelChoiceField(
        queryset=PolicyException.objects.all(), required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, label_suffix="", **kwargs)


class CommentForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=4000
    )


def _base():
    return PolicyException.objects.select_related("rule", "requester")


@role_required()
@require_GET
def exceptions(request: HttpRequest) -> HttpResponse:
    now = datetime.now(UTC)
    form = ExceptionFilter(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    if filters.get("rule"):
        filters = {**filters, "rule": filters["rule"].pk}
    listed = exceptions_filtered(_base(), filters=filters, user=request.user, at=now)
    active = listed.active(now).order_by("expires_at")
    waiting = []
    if user_has_role(request.user, *APPROVERS):
        waiting = (
            listed.filter(state=ExceptionState.REQUESTED)
            .exclude(requester=request.user)
            .exclude(approvals__approver=request.user)
        )[:SECTION_SIZE]
    history = listed.exclude(pk__in=listed.active(now).values("pk")).exclude(
        state=ExceptionState.REQUESTED
    )
    context = {
        "form": form,
        "now": now,
        "mine": listed.filter(requester=request.user)[:SECTION_SIZE],
        "waiting": waiting,
        "active": active[:SECTION_SIZE],
        "expiring": active.filter(expires_at__lte=now + EXPIRING_SOON)[:SECTION_SIZE],
        "history": history[:SECTION_SIZE],
        "may_request": user_has_role(request.user, *REQUESTERS),
        "may_approve": user_has_role(request.user, *APPROVERS),
    }
    return render(request, "posture/exceptions.html", context)


def _prefill(request: HttpRequest) -> dict:
    """From a blocked decision or a rule page: ?rule=&environment=&service=&resource=."""
    initial = {"resource_pattern": request.GET.get("resource") or "*"}
    for field in ("rule", "environment", "service", "extends"):
        if request.GET.get(field):
            initial[field] = request.GET[field]
    return initial


@role_required(*REQUESTERS)
@require_http_methods(["GET", "POST"])
def exception_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        form = ExceptionRequestForm(initial=_prefill(request))
        return render(request, "posture/exception_new.html", _new_context(form))
    form = ExceptionRequestForm(request.POST)
    if form.is_valid():
        try:
            created = exception_request(requester=request.user, **form.cleaned_data)
        except ExceptionRefused as refused:
            field = refused.field if refused.field in form.fields else None
            form.add_error(field, str(refused))
        else:
            return redirect("exception", pk=created.pk)
    # 200, as Django forms do: the page is the answer, with each error next to its field.
    return render(request, "posture/exception_new.html", _new_context(form))


def _new_context(form: ExceptionRequestForm) -> dict:
    limits = sorted(
        {(rule.severity or "unknown", max_days(rule)) for rule in _limit_rules()},
        key=lambda pair: pair[1],
    )
    return {"form": form, "limits": limits}


def _limit_rules() -> list[Rule]:
    """One stand-in rule per severity, to show the limits next to the duration field."""
    return [Rule(severity=severity) for severity in ("critical", "high", "medium", "low", "")]


def _detail_context(request: HttpRequest, exception: PolicyException, **extra) -> dict:
    now = datetime.now(UTC)
    user = request.user
    state = exception.state_at(now)
    approvals = list(exception.approvals.select_related("approver"))
    decides = user_has_role(user, *APPROVERS) and user.pk != exception.requester_id
    already = any(approval.approver_id == user.pk for approval in approvals)
    context = {
        "exception": exception,
        "state": state,
        "scope": exception_scope_text(exception),
        "approvals": approvals,
        "needed": approvals_needed(exception.rule),
        "used": exception_used(exception),
        "timeline": _timeline(exception, approvals),
        "may_decide": decides and state == ExceptionState.REQUESTED and not already,
        "may_revoke": state == ExceptionState.APPROVED
        and (user.pk == exception.requester_id or user_has_role(user, *APPROVERS)),
        "may_extend": user_has_role(user, *REQUESTERS)
        and state in (ExceptionState.APPROVED, ExceptionState.EXPIRED),
        "extensions": list(exception.extensions.order_by("created_at")),
        "comment_form": CommentForm(),
    }
    context.update(extra)
    return context


def _timeline(exception: PolicyException, approvals: list) -> list[dict]:
    """What happened, oldest first; the ledger holds the same steps as signed events."""
    steps = [
        {
            "at": exception.created_at,
            "who": exception.requester.get_username(),
            "what": "requested",
            "comment": exception.justification,
        }
    ]
    for approval in approvals:
        steps.append(
            {
                "at": approval.decided_at,
                "who": approval.approver.get_username(),
                "what": "approved",
                "comment": approval.comment,
            }
        )
    if exception.state == ExceptionState.REJECTED:
        steps.append(
            {
                "at": exception.decided_at,
                "who": exception.decided_by.get_username(),
                "what": "rejected",
                "comment": exception.decision_comment,
            }
        )
    if exception.active_from:
        steps.append({"at": exception.active_from, "who": "", "what": "active", "comment": ""})
    if exception.state == ExceptionState.REVOKED:
        steps.append(
            {
                "at": exception.ended_at,
                "who": exception.ended_by.get_username() if exception.ended_by else "",
                "what": "revoked",
                "comment": "",
            }
        )
    elif exception.expires_at and exception.state in (
        ExceptionState.APPROVED,
        ExceptionState.EXPIRED,
    ):
        steps.append({"at": exception.expires_at, "who": "", "what": "expires", "comment": ""})
    return sorted(steps, key=lambda step: step["at"])


def _get(pk: int) -> PolicyException:
    return get_object_or_404(
        PolicyException.objects.select_related("rule", "requester", "decided_by", "ended_by"),
        pk=pk,
    )


@role_required()
@require_GET
def exception(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "posture/exception.html", _detail_context(request, _get(pk)))


def _transition(request: HttpRequest, pk: int, action) -> HttpResponse:
    found = _get(pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            action(found, request.user, form.cleaned_data["comment"])
        except ExceptionForbidden as forbidden:
            raise PermissionDenied(str(forbidden)) from None
        except ExceptionRefused as refused:
            form.add_error("comment" if refused.field == "comment" else None, str(refused))
        else:
            return redirect("exception", pk=found.pk)
    context = _detail_context(request, _get(pk), comment_form=form)
    return render(request, "posture/exception.html", context)


@role_required(*APPROVERS)
@require_POST
def exception_approve_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _transition(
        request,
        pk,
        lambda found, user, comment: exception_approve(
            exception=found, approver=user, comment=comment
        ),
    )


@role_required(*APPROVERS)
@require_POST
def exception_reject_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _transition(
        request,
        pk,
        lambda found, user, comment: exception_reject(
            exception=found, approver=user, comment=comment
        ),
    )


@role_required(*REVOKERS)
@require_POST
def exception_revoke_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _transition(
        request,
        pk,
        lambda found, user, comment: exception_revoke(exception=found, user=user, comment=comment),
    )
