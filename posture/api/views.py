"""The posture API: SLIs, framework status, the rule catalogue, triage labels."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import Event
from posture.api.serializers import (
    RuleSerializer,
    SliQuerySerializer,
    TriageSerializer,
    WindowQuerySerializer,
)
from posture.models import Framework, Rule
from posture.permissions import has_role
from posture.roles import Role
from posture.selectors import ScopeUnknown, framework_status, mapping_version_current, slis_report
from posture.services import TriageRefused, triage_label

TRIAGERS = (Role.ENGINEER, Role.ONCALL, Role.ADMIN)


def _query(serializer_class: type, request):
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer


class SlisView(APIView):
    @extend_schema(
        parameters=[SliQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
        description="M1-M10 for a window and scope, each with its formula and SLO target.",
    )
    def get(self, request):
        query = _query(SliQuerySerializer, request)
        try:
            report = slis_report(window=query.validated_data["window"], scope=query.scope())
        except ScopeUnknown as unknown:
            raise ValidationError({"scope": str(unknown)}) from None
        return Response(report.as_dict())


class FrameworksView(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        version = mapping_version_current()
        return Response(
            {
                "mapping_version": version.version if version else None,
                "frameworks": [
                    {"slug": f.slug, "name": f.name, "version": f.version, "url": f.url}
                    for f in Framework.objects.order_by("name")
                ],
            }
        )


class FrameworkStatusView(APIView):
    @extend_schema(
        parameters=[WindowQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
        description="Per control: share of mapped rules meeting target, violations open; "
        "the framework's compliance score and its series.",
    )
    def get(self, request, slug: str):
        query = _query(WindowQuerySerializer, request)
        try:
            return Response(framework_status(slug=slug, window=query.validated_data["window"]))
        except ScopeUnknown as unknown:
            raise NotFound(str(unknown)) from None


class RulesView(generics.ListAPIView):
    """The rule catalogue; `?catalogued=false` lists what still needs an owner."""

    serializer_class = RuleSerializer

    def get_queryset(self):
        rules = Rule.objects.order_by("policy", "name")
        catalogued = self.request.query_params.get("catalogued")
        if catalogued in ("true", "false"):
            rules = rules.filter(catalogued=catalogued == "true")
        elif catalogued is not None:
            raise ValidationError({"catalogued": "true or false"})
        return rules


class TriageView(APIView):
    permission_classes = [has_role(*TRIAGERS)]

    @extend_schema(
        request=TriageSerializer,
        responses={201: OpenApiTypes.OBJECT, 400: OpenApiResponse(description="not a deny")},
        description="Label a denied decision as a false positive or confirmed (a ledger event).",
    )
    def post(self, request, pk: int):
        decision = get_object_or_404(Event.objects.select_related("source"), pk=pk)
        body = TriageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            label = triage_label(
                event=decision,
                label=body.validated_data["label"],
                note=body.validated_data["note"],
                user=request.user,
            )
        except TriageRefused as refused:
            raise ValidationError({"event": str(refused)}) from None
        return Response(
            {"triage_event": label.pk, "seq": label.seq, "label": body.validated_data["label"]},
            status=status.HTTP_201_CREATED,
        )
