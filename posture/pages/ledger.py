"""The ledger's pages: the event list (filters, keyset pages, CSV), one event, its verification
and the triage of a deny."""

import csv
from collections.abc import Iterator
from datetime import datetime

import orjson
from django import forms
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from audit.canonical import canonical_loads
from audit.events import OUTCOMES, SEVERITIES, STATUSES, TYPED_FIELDS
from audit.filtersets import EventFilterSet
from audit.models import Event, EventKind, Source, SourceKind
from audit.selectors import event_neighbours, events_newest_first, events_page
from audit.verify import event_verify as proof_of
from posture.api.views import TRIAGERS
from posture.models import Rule, TriageLabel, TriageState
from posture.pages import is_htmx
from posture.permissions import role_required
from posture.roles import Role, user_has_role
from posture.services import MAX_TRIAGE_NOTE, TriageRefused, triage_label

PAGE_SIZE = 50
CSV_MAX_ROWS = 100_000
VERIFIERS = (Role.AUDITOR, Role.ONCALL, Role.ADMIN)
CSV_COLUMNS = (
    "id", "source", "seq", "event_id", "kind", "occurred_at", "received_at", "policy", "rule",
    "policy_version", "outcome", "mode", "enforced", "latency_ms", "status", "environment",
    "service", "namespace", "resource", "subject", "action", "severity", "detected_at",
    "reason", "trace_id", "hash",
)  # fmt: skip
_CSV_FIELDS = tuple("source__name" if c == "source" else c for c in CSV_COLUMNS)
# A cell a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ---------------------------------------------------------------------------------------------
# The list


def _criteria(request: HttpRequest) -> QueryDict:
    """The filters asked for, without empty fields (a form sends every field) or the page."""
    criteria = QueryDict(mutable=True)
    for name, values in request.GET.lists():
        kept = [value for value in values if value.strip()]
        if kept and name != "before":
            criteria.setlist(name, kept)
    return criteria


def _filtered(request: HttpRequest) -> EventFilterSet:
    return EventFilterSet(_criteria(request), queryset=events_newest_first())


def _before(request: HttpRequest) -> int | None:
    try:
        return int(request.GET["before"])
    except (KeyError, ValueError):
        return None


@role_required()
@require_GET
def events(request: HttpRequest) -> HttpResponse:
    filters = _filtered(request)
    rows, next_before = [], None
    if filters.is_valid():
        rows, next_before = events_page(filters.qs, before=_before(request), size=PAGE_SIZE)
    query = filters.data.urlencode()
    context = {
        "filters": filters,
        "form": filters.form,
        "events": rows,
        "next_before": next_before,
        "paged": _before(request) is not None,
        "query": query,
        "filtered": bool(query),
        "values": {name: request.GET.get(name, "") for name in filters.filters},
        "choices": {
            "kind": EventKind.values,
            "outcome": OUTCOMES,
            "status": sorted({s for statuses in STATUSES.values() for s in statuses}),
            "severity": SEVERITIES,
        },
    }
    if is_htmx(request):
        response = render(request, "posture/_partials/events_list.html", context)
        # The address bar shows the filters that apply, not every empty field of the form.
        before = _before(request)
        page = "&".join(part for part in (query, f"before={before}" if before else "") if part)
        response["HX-Push-Url"] = reverse("events") + (f"?{page}" if page else "")
        return response
    context["sources"] = list(
        Source.objects.exclude(kind=SourceKind.INTERNAL).values_list("name", flat=True)
    )
    return render(request, "posture/events.html", context)


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a streamed reply."""

    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(rows: Iterator[tuple]) -> Iterator[str]:
    """The header, then one line per row, every text cell safe to open in a spreadsheet."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


@role_required()
@require_GET
def events_csv(request: HttpRequest) -> HttpResponse:
    filters = _filtered(request)
    if not filters.is_valid():
        return HttpResponse(
            orjson.dumps(filters.errors.get_json_data()),
            status=400,
            content_type="application/json",
        )
    rows = filters.qs.values_list(*_CSV_FIELDS)[:CSV_MAX_ROWS].iterator(chunk_size=2000)
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="events.csv"'
    return response


# ---------------------------------------------------------------------------------------------
# One event


class TriageForm(forms.Form):
    label = forms.ChoiceField(
        choices=TriageLabel.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose false positive or confirmed."},
    )
    note = forms.CharField(
        required=False, max_length=MAX_TRIAGE_NOTE, widget=forms.Textarea(attrs={"rows": 3})
    )


def _event(pk: int) -> Event:
    return get_object_or_404(Event.objects.select_related("source"), pk=pk)


def _triage_context(request: HttpRequest, event: Event, **extra) -> dict:
    return {
        "event": event,
        "triage": TriageState.objects.filter(event_id=event.pk).first(),
        "may_triage": user_has_role(request.user, *TRIAGERS),
        "triage_form": TriageForm(),
        **extra,
    }


def _is_deny(event: Event) -> bool:
    return event.kind == EventKind.DECISION and event.outcome == "deny"


def _event_context(request: HttpRequest, item: Event, **extra) -> dict:
    record = canonical_loads(bytes(item.canonical))
    neighbours = event_neighbours(item)
    rule = None
    if item.policy or item.rule:
        rule = Rule.objects.filter(policy=item.policy or "", name=item.rule or "").first()
    fields = [("received_at", item.received_at)]
    fields += [(name, getattr(item, name)) for name in TYPED_FIELDS]
    context = {
        "event": item,
        "fields": [
            (name.replace("_", " "), value.isoformat() if isinstance(value, datetime) else value)
            for name, value in fields
            if value is not None
        ],
        # The stored record as hashed, indented; masked values stay as they were stored.
        "payload": orjson.dumps(record, option=orjson.OPT_INDENT_2).decode(),
        "previous_id": neighbours.get(item.seq - 1),
        "next_id": neighbours.get(item.seq + 1),
        "rule": rule,
        "may_verify": user_has_role(request.user, *VERIFIERS),
        "is_deny": _is_deny(item),
    }
    if context["is_deny"]:
        context.update(_triage_context(request, item))
    return {**context, **extra}


@role_required()
@require_GET
def event(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "posture/event.html", _event_context(request, _event(pk)))


@role_required(*VERIFIERS)
@require_POST
def event_verify(request: HttpRequest, pk: int) -> HttpResponse:
    item = _event(pk)
    proof = proof_of(item)
    if is_htmx(request):
        return render(request, "posture/_partials/event_proof.html", {"proof": proof})
    return render(request, "posture/event.html", _event_context(request, item, proof=proof))


@role_required(*TRIAGERS)
@require_POST
def event_triage(request: HttpRequest, pk: int) -> HttpResponse:
    item = _event(pk)
    form = TriageForm(request.POST)
    if form.is_valid():
        try:
            recorded = triage_label(
                event=item,
                label=form.cleaned_data["label"],
                note=form.cleaned_data["note"],
                user=request.user,
            )
        except TriageRefused as refused:
            form.add_error(None, str(refused))
        else:
            if not is_htmx(request):
                return redirect("event", pk=item.pk)
            context = _triage_context(
                request,
                item,
                recorded=recorded,
                recorded_label=TriageLabel(form.cleaned_data["label"]).label,
            )
            return render(request, "posture/_partials/event_triage.html", context)
    if is_htmx(request):
        context = _triage_context(request, item, triage_form=form)
        return render(request, "posture/_partials/event_triage.html", context, status=400)
    context = _event_context(request, item, **_triage_context(request, item, triage_form=form))
    return render(request, "posture/event.html", context, status=400)
