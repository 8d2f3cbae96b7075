"""Direct downloads over the API: ``GET checkpoints/{uuid}/urls?expires=SECONDS``.

Thin: validates ``expires`` and calls ``storage.direct``. The manifest's URLs are bearer
credentials for a while, so the response is ``Cache-Control: no-store``. The single-file
redirect (``files/{path}?redirect=1``) lives in ``CheckpointFileView``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from storage import direct
from storage.api.base import CheckpointStreamView


class ExpiresSerializer(serializers.Serializer):
    """``?expires=``: seconds the URLs stay valid, 1 to 604800 (7 days), default 3600."""

    expires = serializers.IntegerField(
        required=False,
        default=direct.DEFAULT_EXPIRES,
        min_value=1,
        max_value=direct.MAX_EXPIRES,
        error_messages={
            "invalid": "must be a whole number of seconds.",
            "min_value": "must be at least 1 second.",
            "max_value": f"must be at most {direct.MAX_EXPIRES} seconds (7 days).",
            "max_string_length": "is too long.",
        },
    )


def expires_seconds(request) -> int:
    """The validated ``expires`` query parameter (a 400 naming it when bad)."""
    data = ExpiresSerializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return data.validated_data["expires"]


class DirectFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class DirectManifestSerializer(serializers.Serializer):
    files = DirectFileSerializer(many=True)


class CheckpointURLsView(CheckpointStreamView):
    """``GET checkpoints/{uuid}/urls``: presigned GET URLs of every file (object stores)."""

    @extend_schema(
        operation_id="checkpoint_urls",
        parameters=[OpenApiParameter("expires", int, required=False)],
        responses={
            200: DirectManifestSerializer,
            400: OpenApiResponse(description="expires is not 1..604800."),
            404: OpenApiResponse(description="No such checkpoint, or it has no files."),
            502: OpenApiResponse(description="The storage failed."),
            503: OpenApiResponse(description="The storage is temporarily unavailable."),
            409: OpenApiResponse(description="The storage has no direct URLs (shared_fs)."),
            410: OpenApiResponse(description="The checkpoint is deleted or being deleted."),
        },
    )
    def get(self, request, uuid):
        expires_in = expires_seconds(request)
        checkpoint = self.get_checkpoint(uuid)
        files = direct.checkpoint_urls(checkpoint, expires_in)
        body = DirectManifestSerializer({"files": files}).data
        response = Response(body)
        response["Cache-Control"] = "no-store"
        return response
