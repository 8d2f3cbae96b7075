"""``GET/POST tokens`` and ``DELETE tokens/{id}`` (``/api/v1/``): translation only.

``POST tokens`` also takes HTTP Basic (``ckpt login``'s one call with a password).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from ckptweb.accounts import services
from ckptweb.accounts.auth import ApiTokenAuthentication, ThrottledBasicAuthentication
from ckptweb.accounts.models import NAME_LENGTH, ApiToken


class TokenSerializer(serializers.ModelSerializer):
    created_at = serializers.DateTimeField(source="created", read_only=True)
    expires_at = serializers.DateTimeField(source="expiry", read_only=True, allow_null=True)
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "user", "created_at", "expires_at", "last_used_at"]


class NewTokenSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_LENGTH)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("must be in the future.")
        return value


class CreatedTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    key = serializers.CharField(help_text="The key: shown this once, stored hashed.")
    expires_at = serializers.DateTimeField(allow_null=True)


@extend_schema(tags=["tokens"])
class TokenList(APIView):
    """The caller's tokens (staff: ``?user=USERNAME``), and a new one (its key shown once)."""

    authentication_classes = [
        ApiTokenAuthentication,
        ThrottledBasicAuthentication,
        SessionAuthentication,
    ]

    @extend_schema(
        parameters=[OpenApiParameter("user", str, description="A username (staff only).")],
        responses={
            200: TokenSerializer(many=True),
            400: OpenApiResponse(description="No such user."),
            403: OpenApiResponse(description="Another user's tokens, asked by non-staff."),
        },
    )
    def get(self, request):
        username = request.query_params.get("user")
        owner = request.user
        if username and username != request.user.get_username():
            if not request.user.is_staff:
                raise PermissionDenied("only staff list other users' tokens.")
            owner = get_user_model().objects.filter(username=username).first()
            if owner is None:
                raise ValidationError({"user": [f"no user {username!r}."]})
        tokens = services.api_tokens(owner)
        return Response(TokenSerializer(tokens, many=True).data)

    @extend_schema(
        request=NewTokenSerializer,
        responses={
            201: CreatedTokenSerializer,
            400: OpenApiResponse(description="A bad name or an expiry in the past."),
            429: OpenApiResponse(description="Too many failed sign-ins (HTTP Basic)."),
        },
    )
    def post(self, request):
        serializer = NewTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token, key = services.create_token(
            request.user, data["name"], expires_at=data.get("expires_at")
        )
        body = {
            "id": token.pk,
            "name": token.name,
            "key": key,
            "expires_at": serializers.DateTimeField().to_representation(token.expiry)
            if token.expiry
            else None,
        }
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["tokens"])
class TokenDetail(APIView):
    """Revoke a token: its owner or staff."""

    @extend_schema(
        responses={
            204: None,
            403: OpenApiResponse(description="Another user's token, revoked by non-staff."),
            404: OpenApiResponse(description="No such token."),
        }
    )
    def delete(self, request, pk: int):
        token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk)
        if not services.may_manage(request.user, token.user_id):
            raise PermissionDenied("only the token's owner or staff revoke it.")
        services.revoke_token(token)
        return Response(status=status.HTTP_204_NO_CONTENT)
