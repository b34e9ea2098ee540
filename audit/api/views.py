import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from kombu.exceptions import OperationalError
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.api.serializers import (
    CheckpointSerializer,
    EventSerializer,
    IngestErrorSerializer,
    IngestResultSerializer,
    VerificationRunSerializer,
)
from audit.filtersets import EventFilterSet
from audit.ingest import IngestRejected
from audit.models import Checkpoint, Source, VerificationRun, VerificationStatus
from audit.selectors import events_for_list
from audit.services import AppendResult, CheckpointRefused, checkpoint_create, ingest_native
from audit.signing import current_public_key, trusted_public_keys
from audit.tasks import ledger_verify_task
from posture.authentication import PersonalTokenAuthentication, SourceTokenAuthentication
from posture.metrics import INGEST_EVENTS, INGEST_REJECTED_BATCHES, INGEST_SECONDS
from posture.permissions import IsPerson, IsSignedInOrSource, IsSource, has_role
from posture.roles import Role

logger = logging.getLogger(__name__)

# Endpoints that sources call as well as people.
SOURCE_OR_PERSON_AUTHENTICATION = [
    SourceTokenAuthentication,
    PersonalTokenAuthentication,
    SessionAuthentication,
]
EVENT_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "event.schema.json"
VERIFIERS = (Role.AUDITOR, Role.ADMIN, Role.ONCALL)


class EventCursorPagination(CursorPagination):
    ordering = ("-occurred_at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def ingest_response(
    request, ingest: Callable[..., AppendResult], *, fmt: str = "native"
) -> Response:
    """What every ingest endpoint does around its `ingest` service: read the raw body, count
    the outcome in the metrics, and answer 201 (something new), 200 (all duplicates) or the
    refusal's 4xx with nothing stored."""
    started = time.perf_counter()
    source = request.auth.source
    try:
        try:
            body = request.body
        except RequestDataTooBig:
            raise IngestRejected(413, "too_large", "request body is too large") from None
        result = ingest(
            source=source,
            body=body,
            content_type=request.META.get("CONTENT_TYPE", ""),
            content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""),
        )
    except IngestRejected as rejected:
        INGEST_REJECTED_BATCHES.labels(rejected.reason).inc()
        logger.info(
            "ingest batch rejected",
            extra={
                "source": source.name,
                "format": fmt,
                "reason": rejected.reason,
                "detail": rejected.detail,
            },
        )
        return Response(rejected.as_dict(), status=rejected.status)
    INGEST_EVENTS.labels(source.name, "accepted").inc(result.accepted)
    if result.duplicates:
        INGEST_EVENTS.labels(source.name, "duplicate").inc(result.duplicates)
    INGEST_SECONDS.observe(time.perf_counter() - started)
    status_code = status.HTTP_201_CREATED if result.accepted else status.HTTP_200_OK
    return Response(result.as_dict(), status=status_code)


class EventsView(generics.ListAPIView):
    """GET: people read the ledger. POST: an enforcement point appends a batch of events."""

    authentication_classes = SOURCE_OR_PERSON_AUTHENTICATION
    serializer_class = EventSerializer
    pagination_class = EventCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilterSet
    parser_classes = []  # the ingest body is read raw; see audit.ingest

    def get_permissions(self):
        return [IsPerson()] if self.request.method in SAFE_METHODS else [IsSource()]

    def get_queryset(self):
        return events_for_list()

    @extend_schema(
        summary="Append a batch of events to the source's chain",
        description=(
            'Body: a JSON array of events, or {"events": [...]}, optionally gzip-compressed '
            "(Content-Encoding: gzip). Up to 1,000 events and 5 MiB decompressed. The batch is "
            "stored whole or not at all; already-stored event ids count as duplicates. "
            "Event schema: /api/v1/schema/events.json."
        ),
        request={"application/json": {"type": "array", "items": {"type": "object"}}},
        responses={
            201: IngestResultSerializer,
            200: OpenApiResponse(IngestResultSerializer, description="nothing new: all duplicates"),
            400: IngestErrorSerializer,
            401: IngestErrorSerializer,
            403: IngestErrorSerializer,
            413: IngestErrorSerializer,
            415: IngestErrorSerializer,
        },
    )
    def post(self, request, *args, **kwargs):
        return ingest_response(request, ingest_native)


class EventDetailView(generics.RetrieveAPIView):
    serializer_class = EventSerializer

    def get_queryset(self):
        return events_for_list()


@extend_schema(
    summary="The native event schema (JSON Schema 2020-12)", responses={200: OpenApiTypes.OBJECT}
)
class EventSchemaView(APIView):
    authentication_classes = SOURCE_OR_PERSON_AUTHENTICATION
    permission_classes = [IsSignedInOrSource]

    def get(self, request):
        return HttpResponse(EVENT_SCHEMA_PATH.read_bytes(), content_type="application/schema+json")


@extend_schema(
    summary="The public keys that verify checkpoint signatures",
    responses={200: OpenApiTypes.OBJECT},
)
class PublicKeyView(APIView):
    def get(self, request):
        return Response(
            {
                "algorithm": "Ed25519",
                "encoding": "base64 of the 32-byte raw public key",
                "current": current_public_key(),
                "trusted": sorted(trusted_public_keys()),
            }
        )


class CheckpointPagination(CursorPagination):
    ordering = "-number"
    page_size = 100


class CheckpointsView(generics.ListAPIView):
    """GET: signed checkpoints, newest first. POST: sign the current heads now."""

    serializer_class = CheckpointSerializer
    pagination_class = CheckpointPagination
    queryset = Checkpoint.objects.all()

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsPerson()]
        return [has_role(Role.AUDITOR, Role.ADMIN)()]

    @extend_schema(
        summary="Create a checkpoint now",
        request=None,
        responses={
            201: CheckpointSerializer,
            200: CheckpointSerializer,
            409: IngestErrorSerializer,
        },
    )
    def post(self, request):
        try:
            checkpoint = checkpoint_create(force=True)
        except CheckpointRefused as refused:
            return Response({"error": "checkpoint_refused", "detail": str(refused)}, status=409)
        return Response(CheckpointSerializer(checkpoint).data, status=201)


def _verification_start(source_name: str) -> Response:
    """Queue a verification run; 202 with the run (already finished when tasks run inline)."""
    run = VerificationRun.objects.create(
        started_at=datetime.now(UTC), status=VerificationStatus.RUNNING, source_name=source_name
    )
    try:
        ledger_verify_task.delay(run.pk)
    except OperationalError as error:
        run.finished_at, run.status = datetime.now(UTC), VerificationStatus.FAILED
        run.result = {"error": f"task queue unavailable: {error}"}
        run.save(update_fields=["finished_at", "status", "result"])
        return Response(
            {"error": "queue_unavailable", "detail": "the task queue is unreachable; try again"},
            status=503,
        )
    run.refresh_from_db()
    return Response(VerificationRunSerializer(run).data, status=202)


class VerifyView(APIView):
    """GET: the latest verification (one is started if there is none). POST: start a new one.

    Verification reads the whole ledger, so it always runs as a task, never in the request.
    """

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsPerson()]
        return [has_role(*VERIFIERS)()]

    def _source_name(self, request) -> str:
        source_name = request.query_params.get("source", "")
        if source_name:
            get_object_or_404(Source, name=source_name)
        return source_name

    @extend_schema(
        summary="The latest ledger verification",
        parameters=[OpenApiParameter("source", str, description="only runs for this source")],
        responses={200: VerificationRunSerializer, 202: VerificationRunSerializer},
    )
    def get(self, request):
        source_name = self._source_name(request)
        runs = VerificationRun.objects.filter(source_name=source_name)
        run = runs.exclude(status=VerificationStatus.RUNNING).first() or runs.first()
        if run is None:
            return _verification_start(source_name)
        done = run.status != VerificationStatus.RUNNING
        return Response(VerificationRunSerializer(run).data, status=200 if done else 202)

    @extend_schema(
        summary="Start a ledger verification",
        parameters=[OpenApiParameter("source", str, description="verify only this source")],
        request=None,
        responses={202: VerificationRunSerializer},
    )
    def post(self, request):
        return _verification_start(self._source_name(request))


@extend_schema_view(
    get=extend_schema(
        summary="One ledger verification run", operation_id="ledger_verify_run_retrieve"
    )
)
class VerificationRunView(generics.RetrieveAPIView):
    serializer_class = VerificationRunSerializer
    queryset = VerificationRun.objects.all()
