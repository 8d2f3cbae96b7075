"""REST view of partial deletion: ``POST checkpoints/{uuid}/rm {globs: [...]}`` -> 202.

Thin: DRF validates the body's shape, ``experiments.gc.files.delete_files`` owns
every rule (glob syntax, protection, state) and starts the FILES GC run; its GlobError is
a 400 naming ``globs`` and its Conflicts are 409s (``ckptweb.api.exception_handler``).
"""

from __future__ import annotations

import uuid as uuid_lib

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from experiments.api import serializers as s
from experiments.api.views import ERROR_409, ApiViewMixin, validated
from experiments.gc import files
from experiments.gc.globs import MAX_GLOB_CHARS, MAX_GLOBS
from experiments.models import Checkpoint


class CheckpointRmSerializer(serializers.Serializer):
    """Body of ``checkpoints/{uuid}/rm``: the globs selecting the files to delete."""

    globs = serializers.ListField(
        child=serializers.CharField(
            allow_blank=False,
            trim_whitespace=False,
            max_length=MAX_GLOB_CHARS,
        ),
        allow_empty=False,
        max_length=MAX_GLOBS,
        help_text='Python glob patterns with "**", relative to the checkpoint directory.',
    )


class CheckpointFilesDelete(ApiViewMixin, generics.GenericAPIView):
    """Delete the checkpoint's files matching ``globs`` (a GC run of reason FILES)."""

    serializer_class = CheckpointRmSerializer

    def get_queryset(self):
        return Checkpoint.objects.select_related("experiment").order_by("-id")

    @extend_schema(responses={202: s.GCRunEnvelopeSerializer, 409: ERROR_409})
    def post(self, request, uuid=None):
        """Start deleting the matching files; follow ``gc_run`` for the outcome."""
        try:
            checkpoint = self.get_queryset().get(uuid=uuid_lib.UUID(uuid))
        except (ValueError, Checkpoint.DoesNotExist):
            raise NotFound(f"no checkpoint {uuid[:80]!r}.") from None
        self.check_object_permissions(request, checkpoint)
        data = validated(self.get_serializer_class(), request)
        run = files.delete_files(checkpoint, data["globs"])
        return Response({"gc_run": s.GCRunSerializer(run).data}, status=status.HTTP_202_ACCEPTED)
