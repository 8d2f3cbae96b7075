"""Upload routes: a checkpoint's files sent through ckptweb's API (``docs/architecture.md``
"Uploads"; the bytes are ``storage.uploads``').

``POST trials/{id}/uploads`` opens a session with the report's rules (paths, sizes, file
count, metadata: ``services.check_resources`` and ``check_metadata``) and the report's
permission (the experiment's owner or staff). ``POST uploads/{id}/complete`` checks the
directory on storage and reports the checkpoint COMPLETED through
``services.report_checkpoint``, the one service a report goes through.
"""

from __future__ import annotations

import uuid as uuid_lib
from urllib.parse import quote

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from ckptweb.lib.limits import MAX_INT, MAX_RESOURCES, InvalidInput
from experiments import services
from experiments.api.serializers import CheckpointCreatedSerializer, storable
from experiments.api.views import (
    ERROR_409,
    TRIAL_ID,
    ApiViewMixin,
    TrialChildMixin,
    validated,
)
from experiments.models import Checkpoint, Trial
from experiments.permissions import IsOwnerOrStaffOrReadOnly, is_owner_or_staff
from storage import uploads
from storage.models import UploadSession, UploadState

UPLOAD_ID = OpenApiParameter("upload_id", int, OpenApiParameter.PATH)
FILE_PATH = OpenApiParameter("path", str, OpenApiParameter.PATH, description="A declared file.")


class UploadFileSerializer(serializers.Serializer):
    path = serializers.CharField(trim_whitespace=False)
    size = serializers.IntegerField(min_value=0, max_value=MAX_INT)


class UploadCreateSerializer(serializers.Serializer):
    """POST trials/{id}/uploads: the checkpoint to be, and every file with its size."""

    uuid = serializers.UUIDField(required=False, help_text="Generated when omitted.")
    steps_completed = serializers.IntegerField(min_value=0, max_value=MAX_INT)
    metadata = serializers.DictField(required=False, help_text="JSON object, at most 1 MiB.")
    files = serializers.ListField(
        child=UploadFileSerializer(), min_length=1, max_length=MAX_RESOURCES
    )

    def validate_metadata(self, value):
        return storable(value, "metadata")


class UploadPartSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    url = serializers.URLField(help_text="Where to PUT the part's bytes.")
    size = serializers.IntegerField()
    present = serializers.BooleanField(
        required=False, help_text="GET: the part is on storage already; do not send it again."
    )
    etag = serializers.CharField(
        required=False, help_text="GET: the present part's ETag, for complete's parts."
    )


class UploadFileStateSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    present = serializers.IntegerField(required=False, help_text="Bytes on storage (GET).")
    parts = UploadPartSerializer(many=True, required=False)


class UploadSerializer(serializers.Serializer):
    """An upload session: 201 of POST trials/{id}/uploads, and GET uploads/{id}."""

    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    trial_id = serializers.IntegerField()
    state = serializers.CharField(help_text="OPEN, COMPLETED or ABORTED.")
    expires_at = serializers.DateTimeField()
    files = UploadFileStateSerializer(many=True)
    bytes_present = serializers.IntegerField(required=False)
    bytes_total = serializers.IntegerField(required=False)


class UploadWrittenSerializer(serializers.Serializer):
    """200 of PUT uploads/{id}/files/{path}: the file's bytes on storage now."""

    path = serializers.CharField()
    size = serializers.IntegerField()
    present = serializers.IntegerField()


class UploadCompleteSerializer(serializers.Serializer):
    """POST uploads/{id}/complete: per-file part ETags (multipart uploads only)."""

    parts = serializers.DictField(required=False)


def declared_files(files: list[dict]) -> dict[str, int]:
    """``{path: size}`` under the report's resource rules, refused naming ``files``."""
    resources: dict[str, int] = {}
    for item in files:
        if item["path"] in resources:
            raise InvalidInput("files", f"files lists {item['path']!r} twice.")
        resources[item["path"]] = item["size"]
    try:
        clean = services.check_resources(resources)
    except InvalidInput as exc:
        raise InvalidInput("files", exc.message.replace("resources", "files", 1)) from None
    if len(clean) != len(resources):
        raise InvalidInput("files", "files lists one path twice (after normalising).")
    return clean


def session_body(session: UploadSession, present: dict[str, int] | None = None) -> dict:
    """The session's representation; ``present``: bytes on storage per file."""
    body = {
        "id": session.pk,
        "uuid": str(session.uuid),
        "trial_id": session.trial_id,
        "state": session.state,
        "expires_at": session.expires_at,
    }
    if present is not None:
        body["files"] = [
            {"path": path, "size": size, "present": present[path]}
            for path, size in session.files.items()
        ]
        body["bytes_present"] = sum(present.values())
        body["bytes_total"] = sum(session.files.values())
    return body


def server_url(request, session: UploadSession):
    """The URL on ckptweb that takes one file of ``session`` (shared_fs)."""

    def url(path: str) -> str:
        return request.build_absolute_uri(
            f"/api/v1/uploads/{session.pk}/files/{quote(path, safe='/')}"
        )

    return url


class TrialUploadList(TrialChildMixin, generics.GenericAPIView):
    """POST trials/{id}/uploads: open an upload session (owner or staff)."""

    serializer_class = UploadCreateSerializer

    @extend_schema(
        tags=["uploads"], parameters=[TRIAL_ID], responses={201: UploadSerializer, 409: ERROR_409}
    )
    def post(self, request, *args, **kwargs):
        trial = self.get_parent()
        trial.experiment.ensure_not_deleting()
        data = validated(UploadCreateSerializer, request)
        files = declared_files(data["files"])
        metadata = services.check_metadata(data.get("metadata"), walked=True)
        uuid = data.get("uuid")
        if uuid is not None and Checkpoint.objects.filter(uuid=uuid).exists():
            raise services.duplicate_uuid(uuid)
        session = uploads.open_session(
            trial.experiment.storage,
            str(uuid or uuid_lib.uuid4()),
            files,
            trial.pk,
            {"steps_completed": data["steps_completed"], "metadata": metadata},
        )
        parts = uploads.parts(session, server_url(request, session))
        body = {**session_body(session), "files": parts}
        return Response(body, status=status.HTTP_201_CREATED)


class UploadMixin(ApiViewMixin):
    """Views of ``uploads/{id}``: the session and its trial, authorized on the trial."""

    def get_session(self) -> tuple[UploadSession, Trial]:
        session = generics.get_object_or_404(
            UploadSession.objects.select_related("storage"), pk=self.kwargs["upload_id"]
        )
        trial = generics.get_object_or_404(
            Trial.objects.select_related("experiment"), pk=session.trial_id
        )
        # Reads too: a session's URLs are write capabilities (presigned PUTs), not data.
        if not is_owner_or_staff(self.request.user, trial):
            self.permission_denied(self.request, message=IsOwnerOrStaffOrReadOnly.message)
        return session, trial


class UploadDetail(UploadMixin, APIView):
    """GET uploads/{id}: progress; DELETE: abort, removing what was uploaded."""

    @extend_schema(tags=["uploads"], parameters=[UPLOAD_ID], responses={200: UploadSerializer})
    def get(self, request, upload_id):
        session, _ = self.get_session()
        if session.state != UploadState.OPEN:
            return Response(session_body(session, dict.fromkeys(session.files, 0)))
        body = session_body(session, uploads.present(session))
        urls = {
            item["path"]: item["parts"]
            for item in uploads.parts(session, server_url(request, session), resumed=True)
        }
        for item in body["files"]:
            item["parts"] = urls[item["path"]]
        return Response(body)

    @extend_schema(tags=["uploads"], parameters=[UPLOAD_ID], responses={204: None, 409: ERROR_409})
    def delete(self, request, upload_id):
        session, _ = self.get_session()
        uploads.abort(session)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadComplete(UploadMixin, APIView):
    """POST uploads/{id}/complete: check storage, then report the checkpoint COMPLETED."""

    @extend_schema(
        tags=["uploads"],
        parameters=[UPLOAD_ID],
        request=UploadCompleteSerializer,
        responses={201: CheckpointCreatedSerializer, 409: ERROR_409},
    )
    def post(self, request, upload_id):
        session, trial = self.get_session()
        data = validated(UploadCompleteSerializer, request)
        uploads.ensure_open(session)
        resources = uploads.check_complete(session, data.get("parts"))
        with transaction.atomic():
            claimed = UploadSession.objects.filter(pk=session.pk, state=UploadState.OPEN).update(
                state=UploadState.COMPLETED
            )
            if not claimed:
                uploads.ensure_open(UploadSession.objects.get(pk=session.pk))
            checkpoint = services.report_checkpoint(
                trial,
                session.report["steps_completed"],
                resources=resources,
                metadata=session.report.get("metadata") or {},
                uuid=session.uuid,
            )
        return Response(
            CheckpointCreatedSerializer(checkpoint).data, status=status.HTTP_201_CREATED
        )


class UploadFile(UploadMixin, APIView):
    """PUT uploads/{id}/files/{path}: one file's bytes (shared_fs), streamed to disk.

    ``Content-Range: bytes a-b/total`` resumes: the body is written from byte ``a``.
    The body is read in chunks and never parsed (no ``request.data``).
    """

    @extend_schema(
        tags=["uploads"],
        parameters=[UPLOAD_ID, FILE_PATH],
        request=None,
        responses={200: UploadWrittenSerializer, 409: ERROR_409},
    )
    def put(self, request, upload_id, path):
        session, trial = self.get_session()
        trial.experiment.ensure_not_deleting()
        size = session.files.get(path)
        if size is None:
            raise InvalidInput("path", f"{path[:200]!r} is not a file of upload {session.pk}.")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = None
        offset, length = uploads.content_range(request.META.get("HTTP_CONTENT_RANGE"), length, size)
        stream = request._request  # Django's request: read() pulls from wsgi.input
        written = uploads.write(session, path, offset, length, stream.read)
        return Response({"path": path, "size": size, "present": written})
