"""The exceptions API: list, request, read, approve, reject, revoke (for chat-ops and CI), and
the active exceptions as JSON and as an OPA bundle (for enforcement points, with a source
token, as well as for people)."""

from datetime import UTC, datetime

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.api.views import SOURCE_OR_PERSON_AUTHENTICATION
from posture.exceptions import (
    APPROVERS,
    REQUESTERS,
    ExceptionForbidden,
    ExceptionRefused,
    exception_approve,
    exception_reject,
    exception_request,
    exception_revoke,
    exceptions_active_data,
    exceptions_bundle,
    exceptions_filtered,
)
from posture.models import ExceptionApproval, ExceptionState, PolicyException, Rule
from posture.permissions import IsSignedInOrSource, has_role
from posture.roles import Role


class ApprovalSerializer(serializers.ModelSerializer):
    approver = serializers.CharField(source="approver.username")

    class Meta:
        model = ExceptionApproval
        fields = ["approver", "decided_at", "comment"]


class ExceptionSerializer(serializers.ModelSerializer):
    policy = serializers.CharField(source="rule.policy")
    rule_name = serializers.CharField(source="rule.name")
    requester = serializers.CharField(source="requester.username")
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    state = serializers.SerializerMethodField()
    approvals = ApprovalSerializer(many=True)

    class Meta:
        model = PolicyException
        fields = [
            "id",
            "rule",
            "policy",
            "rule_name",
            "environment",
            "service",
            "resource_pattern",
            "justification",
            "ticket_url",
            "duration_days",
            "requester",
            "state",
            "created_at",
            "decided_at",
            "decided_by",
            "decision_comment",
            "active_from",
            "expires_at",
            "ended_at",
            "extends",
            "approvals",
        ]

    def get_state(self, exception: PolicyException) -> str:
        """Approved past its expiry reads as expired, whether or not the job has run."""
        return exception.state_at(datetime.now(UTC))


class ExceptionRequestSerializer(serializers.Serializer):
    rule = serializers.PrimaryKeyRelatedField(queryset=Rule.objects.all())
    environment = serializers.CharField(max_length=128, required=False, allow_blank=True)
    service = serializers.CharField(max_length=128, required=False, allow_blank=True)
    resource_pattern = serializers.CharField(max_length=512, required=False, default="*")
    justification = serializers.CharField(max_length=4000)
    ticket_url = serializers.URLField(max_length=512, required=False, allow_blank=True)
    duration_days = serializers.IntegerField(min_value=1)
    extends = serializers.PrimaryKeyRelatedField(
        queryset=PolicyException.objects.all(), required=False, allow_null=True
    )


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


class ExceptionFilterSerializer(serializers.Serializer):
    rule = serializers.IntegerField(required=False)
    state = serializers.ChoiceField(choices=ExceptionState.choices, required=False)
    team = serializers.CharField(required=False)
    mine = serializers.BooleanField(required=False)


def _refused(refused: ExceptionRefused):
    if isinstance(refused, ExceptionForbidden):
        return PermissionDenied(str(refused))
    return ValidationError({refused.field: [str(refused)]})


def _detail_queryset():
    return PolicyException.objects.select_related(
        "rule", "requester", "decided_by"
    ).prefetch_related("approvals__approver")


class ExceptionsView(generics.ListAPIView):
    """GET: exceptions, newest first (?rule, ?state, ?team, ?mine). POST: request one."""

    serializer_class = ExceptionSerializer

    def get_permissions(self):
        if self.request.method == "POST":
            return [has_role(*REQUESTERS)()]
        return super().get_permissions()

    def get_queryset(self):
        query = ExceptionFilterSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return exceptions_filtered(
            _detail_queryset(),
            filters=query.validated_data,
            user=self.request.user,
            at=datetime.now(UTC),
        )

    @extend_schema(
        request=ExceptionRequestSerializer,
        responses={201: ExceptionSerializer, 400: OpenApiResponse(description="names the field")},
        description="Request an exception; the duration is capped by the rule's severity.",
    )
    def post(self, request):
        body = ExceptionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            exception = exception_request(requester=request.user, **body.validated_data)
        except ExceptionRefused as refused:
            raise _refused(refused) from None
        return Response(
            ExceptionSerializer(_detail_queryset().get(pk=exception.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class ExceptionView(generics.RetrieveAPIView):
    serializer_class = ExceptionSerializer

    def get_queryset(self):
        return _detail_queryset()


class _TransitionView(APIView):
    """POST {"comment": "..."}: one transition of one exception."""

    def transition(self, exception: PolicyException, user, comment: str) -> PolicyException:
        raise NotImplementedError

    @extend_schema(
        request=CommentSerializer,
        responses={200: ExceptionSerializer, 400: OpenApiResponse(description="names the field")},
    )
    def post(self, request, pk: int):
        exception = get_object_or_404(PolicyException, pk=pk)
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            self.transition(exception, request.user, body.validated_data["comment"])
        except ExceptionRefused as refused:
            raise _refused(refused) from None
        return Response(ExceptionSerializer(_detail_queryset().get(pk=pk)).data)


class ExceptionApproveView(_TransitionView):
    permission_classes = [has_role(*APPROVERS)]

    def transition(self, exception, user, comment):
        return exception_approve(exception=exception, approver=user, comment=comment)


class ExceptionRejectView(_TransitionView):
    permission_classes = [has_role(*APPROVERS)]

    def transition(self, exception, user, comment):
        return exception_reject(exception=exception, approver=user, comment=comment)


class ExceptionRevokeView(_TransitionView):
    # The requester (an engineer or admin) or an approver; the service checks which.
    permission_classes = [has_role(Role.ENGINEER, *APPROVERS)]

    def transition(self, exception, user, comment):
        return exception_revoke(exception=exception, user=user, comment=comment)


class ActiveExceptionsView(APIView):
    authentication_classes = SOURCE_OR_PERSON_AUTHENTICATION
    permission_classes = [IsSignedInOrSource]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        description="The exceptions in force now (expiry judged at read time).",
    )
    def get(self, request):
        return Response({"active": exceptions_active_data()})


def _etag_matches(header: str, revision: str) -> bool:
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    return revision in tags or "*" in tags


class ExceptionsBundleView(APIView):
    authentication_classes = SOURCE_OR_PERSON_AUTHENTICATION
    permission_classes = [IsSignedInOrSource]

    @extend_schema(
        responses={
            (200, "application/gzip"): OpenApiTypes.BINARY,
            304: OpenApiResponse(description="If-None-Match names the current revision"),
        },
        description="The active exceptions as an OPA bundle; ETag is its revision.",
    )
    def get(self, request):
        bundle = exceptions_bundle()
        etag = f'"{bundle.revision}"'
        if _etag_matches(request.headers.get("If-None-Match", ""), bundle.revision):
            response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = HttpResponse(bundle.body, content_type="application/gzip")
            response["Content-Disposition"] = 'attachment; filename="bundle.tar.gz"'
        response["ETag"] = etag
        response["Cache-Control"] = "no-cache"
        return response
