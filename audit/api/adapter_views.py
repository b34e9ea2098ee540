"""Ingest endpoints in the engines' own formats (docs/adapters.md).

Same authentication, permission, metrics and refusal handling as native ingest
(audit.api.views.EventsView.post); the mapping lives in audit.adapters.
"""

import logging
from collections.abc import Callable

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from audit.adapters import services
from audit.api.serializers import IngestErrorSerializer, IngestResultSerializer
from audit.api.views import SOURCE_OR_PERSON_AUTHENTICATION, ingest_response
from audit.services import AppendResult
from posture.permissions import IsSource

logger = logging.getLogger(__name__)

RESPONSES = {
    201: IngestResultSerializer,
    200: OpenApiResponse(IngestResultSerializer, description="nothing new: all duplicates"),
    400: IngestErrorSerializer,
    401: IngestErrorSerializer,
    403: IngestErrorSerializer,
    413: IngestErrorSerializer,
    415: IngestErrorSerializer,
}


class AdapterIngestView(APIView):
    """POST only, by a source token; 2xx only once the batch is committed."""

    authentication_classes = SOURCE_OR_PERSON_AUTHENTICATION
    permission_classes = [IsSource]
    parser_classes = []  # the body is read raw; see audit.adapters.decode
    ingest: Callable[..., AppendResult]
    fmt = ""

    def post(self, request, *args, **kwargs):
        return ingest_response(request, type(self).ingest, fmt=self.fmt)


def _schema(summary: str, description: str, media_types: tuple[str, ...] = ("application/json",)):
    body = {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
    return extend_schema(
        summary=summary,
        description=description + " Mapping and configuration: docs/adapters.md.",
        request={media_type: body for media_type in media_types},
        responses=RESPONSES,
    )


class OpaDecisionLogsView(AdapterIngestView):
    ingest = staticmethod(services.ingest_opa_logs)
    fmt = "opa-logs"

    @_schema(
        "OPA decision logs",
        "OPA's decision_logs plugin posts here when its service URL is "
        "http://HOST/api/v1/ingest/opa: a JSON array of decision events, usually "
        "gzip-compressed. decision_id is the idempotency key: a requeued chunk is stored once.",
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class OpaStatusView(AdapterIngestView):
    ingest = staticmethod(services.ingest_opa_status)
    fmt = "opa-status"

    @_schema(
        "OPA status updates",
        "OPA's status plugin posts here: stored as a heartbeat (with the decision-log drop "
        "counters) and a policy_deployment per newly activated bundle revision.",
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class GatekeeperView(AdapterIngestView):
    ingest = staticmethod(services.ingest_gatekeeper)
    fmt = "gatekeeper"

    @_schema(
        "Gatekeeper audit results and admission violations",
        "Constraints as `kubectl get constraints -o json` returns them, audit log lines "
        "(JSON array or application/x-ndjson) and export messages (violation_audited, "
        "violation_admission).",
        ("application/json", "application/x-ndjson"),
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class KyvernoView(AdapterIngestView):
    ingest = staticmethod(services.ingest_kyverno)
    fmt = "kyverno"

    @_schema(
        "Kyverno policy reports",
        "PolicyReport and ClusterPolicyReport objects (wgpolicyk8s.io/v1alpha2), alone, in an "
        "array or in a kind: List, and Policy Reporter's webhook target payloads.",
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class OcsfView(AdapterIngestView):
    ingest = staticmethod(services.ingest_ocsf)
    fmt = "ocsf"

    @_schema(
        "OCSF findings",
        "OCSF Detection Finding (2004) and Compliance Finding (2003) objects, as Prowler "
        "writes them with -M json-ocsf (a JSON array), or one per line.",
        ("application/json", "application/x-ndjson"),
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
