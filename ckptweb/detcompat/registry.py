"""Determined's model registry routes over ckptweb's registry (``experiments.registry``).

``det model create|list|describe|list-versions|register-version|delete`` and the SDK's
``create_model``, ``get_model``, ``list_models``, ``Model.register_version``,
``get_version``, ``list_versions``, ``set_description``, ``set_labels``, ``delete``,
``ModelVersion.delete`` and ``get_model_labels`` call these. Every rule is the registry's
own, as ``/api/v1/models`` applies it (``experiments.api.registry_views``): any signed-in
user reads; the model's owner or staff create versions, change and delete the model; a
version may also be deleted by the owner of the pinned checkpoint's experiment; names,
labels, lengths, the COMPLETED rule and the reserved names of deleted models are
``experiments.registry``'s checks (400 naming the field, 409 for a taken name).

Mapping (``v1Model``/``v1ModelVersion``):

* a model is found by its name, or by its numeric id when no model has that name (the CLI
  puts ``model.id`` in some paths);
* ``labels``, ``description``, owner (``userId``/``username``), times and version numbers
  are ckptweb's; ``numVersions`` counts the versions that exist;
* ckptweb has no workspaces: every model is in Determined's default workspace (id 1,
  ``Uncategorized``), and a request naming another is a 400 naming ``workspaceName``;
* ckptweb has no model ``metadata`` or ``notes``, no archiving, no version ``name``,
  ``labels``, ``metadata`` or ``notes``: these answer Determined's empty value ({}, "",
  false, []), and a request setting one to anything but that empty value is a 400 naming
  the field (never silently dropped); a model cannot be renamed (its name is its identity);
* a version's ``comment`` is ckptweb's comment, ``userId``/``username`` who registered it,
  ``lastUpdatedTime`` its creation time (versions do not change), ``checkpoint`` the pinned
  checkpoint as ``translate.checkpoint_json`` gives it everywhere else.
"""

from __future__ import annotations

import re
import uuid as uuid_lib
from collections import Counter

from django.db.models import Count
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from ckptweb.detcompat import translate
from ckptweb.detcompat.base import DetView, checkpoints_queryset, int_param, json_body
from ckptweb.detcompat.views import MAX_PAGE
from experiments import registry
from experiments.api.registry_views import IsModelOwnerOrStaffOrReadOnly
from experiments.filters import ModelFilterSet
from experiments.models import Checkpoint, Model, ModelVersion
from experiments.permissions import is_owner_or_staff, may_release_pin

#: Determined's default workspace, where every ckptweb model is.
WORKSPACE_ID = 1
WORKSPACE_NAME = "Uncategorized"
#: Determined's model sorts -> ckptweb order (``WORKSPACE``: there is one, so by name).
MODEL_SORTS = {
    "SORT_BY_UNSPECIFIED": "name",
    "SORT_BY_NAME": "name",
    "SORT_BY_DESCRIPTION": "description",
    "SORT_BY_CREATION_TIME": "created_at",
    "SORT_BY_LAST_UPDATED_TIME": "updated_at",
    "SORT_BY_NUM_VERSIONS": "num_versions",
    "SORT_BY_WORKSPACE": "name",
}
VERSION_SORTS = {
    "SORT_BY_UNSPECIFIED": "version",
    "SORT_BY_VERSION": "version",
    "SORT_BY_CREATION_TIME": "created_at",
}
ORDERS = ("ORDER_BY_UNSPECIFIED", "ORDER_BY_ASC", "ORDER_BY_DESC")
#: Fields of Determined's requests that ckptweb has no place for, and the only value each
#: may have here (its empty one).
MODEL_EMPTY_FIELDS = {"metadata": {}, "notes": "", "archived": False}
VERSION_EMPTY_FIELDS = {"metadata": {}, "notes": "", "name": "", "labels": []}
RELEASE_MESSAGE = (
    "Only the model's owner, the owner of the pinned checkpoint's experiment, or "
    "staff may delete a model version."
)


# --- translation ---------------------------------------------------------------------------


def model_json(model: Model, num_versions: int) -> dict:
    """A ``v1Model``."""
    return {
        "id": model.pk,
        "name": model.name,
        "description": model.description,
        "labels": list(model.labels or []),
        "metadata": {},
        "notes": "",
        "archived": False,
        "creationTime": translate.rfc3339(model.created_at),
        "lastUpdatedTime": translate.rfc3339(model.updated_at),
        "numVersions": num_versions,
        "userId": model.owner_id,
        "username": model.owner.get_username(),
        "workspaceId": WORKSPACE_ID,
    }


def model_body(model: Model) -> dict:
    """A ``v1Model`` of one model, its versions counted."""
    return model_json(model, ModelVersion.objects.filter(model=model).count())


def versions_json(versions: list[ModelVersion], model: dict) -> list[dict]:
    """``v1ModelVersion``s of one model's versions (``model``: its ``v1Model``)."""
    ids = [version.checkpoint_id for version in versions]
    found = {c.pk: c for c in checkpoints_queryset().filter(pk__in=ids)}
    checkpoints = [found[pk] for pk in dict.fromkeys(ids)]
    bodies = dict(
        zip([c.pk for c in checkpoints], translate.checkpoints_json(checkpoints), strict=True)
    )
    result = []
    for version in versions:
        body = {
            "id": version.pk,
            "version": version.version,
            "model": model,
            "checkpoint": bodies[version.checkpoint_id],
            "comment": version.comment,
            "creationTime": translate.rfc3339(version.created_at),
            "lastUpdatedTime": translate.rfc3339(version.created_at),
            "name": "",
            "labels": [],
            "metadata": {},
            "notes": "",
        }
        if version.registered_by_id is not None:
            body["userId"] = version.registered_by_id
            body["username"] = version.registered_by.get_username()
        result.append(body)
    return result


# --- request helpers -----------------------------------------------------------------------


def find_model(identifier: str) -> Model:
    """The model named ``identifier``, else the one with that numeric id; 404 otherwise."""
    models = Model.objects.select_related("owner")
    model = models.filter(name=identifier).first()
    if model is None and re.fullmatch(r"[0-9]{1,18}", identifier):
        model = models.filter(pk=int(identifier)).first()
    if model is None:
        raise NotFound(f"model {identifier[:130]!r} not found.")
    return model


def find_version(model: Model, number: str) -> ModelVersion:
    """Version ``number`` of ``model`` (the registry's lookup), or a 404."""
    try:
        version = registry.get_version(model, number)
    except (registry.RegistryError, ModelVersion.DoesNotExist):
        raise NotFound(f"model {model.name} has no version {number[:20]}.") from None
    version.model = model
    return version


def ensure_may_change_model(request, model: Model) -> None:
    """``/api/v1/models``' rule: the model's owner or staff change it (403 otherwise)."""
    if not is_owner_or_staff(request.user, model):
        raise PermissionDenied(IsModelOwnerOrStaffOrReadOnly.message)


def check_fields(data: dict, allowed: set[str], empty: dict) -> None:
    """400 naming the first unknown field, or one ckptweb cannot store set to a value."""
    unknown = sorted(set(data) - allowed - set(empty))
    if unknown:
        raise ValidationError({unknown[0]: ["is not a field of this request."]})
    for field, nothing in empty.items():
        if data.get(field) not in (None, nothing):
            raise ValidationError(
                {field: [f"ckptweb's registry has no {field} here; it can only be empty."]}
            )


def check_workspace(data: dict) -> None:
    """Only Determined's default workspace exists here (ckptweb has no workspaces)."""
    if data.get("workspaceName") not in (None, "", WORKSPACE_NAME):
        raise ValidationError(
            {"workspaceName": [f"ckptweb has no workspaces; models are in {WORKSPACE_NAME!r}."]}
        )
    if data.get("workspaceId") not in (None, 0, WORKSPACE_ID):
        raise ValidationError(
            {"workspaceId": [f"ckptweb has no workspaces; models are in {WORKSPACE_ID}."]}
        )


def ordering(request, sorts: dict[str, str], descending_default: bool) -> list[str]:
    """ORDER BY for Determined's sortBy and orderBy (ties broken by id)."""
    sort = request.query_params.get("sortBy") or "SORT_BY_UNSPECIFIED"
    order = request.query_params.get("orderBy") or "ORDER_BY_UNSPECIFIED"
    if sort not in sorts:
        raise ValidationError({"sortBy": [f"unknown sort {sort[:40]!r}."]})
    if order not in ORDERS:
        raise ValidationError({"orderBy": [f"unknown order {order[:40]!r}."]})
    descending = order == "ORDER_BY_DESC" or (
        order == "ORDER_BY_UNSPECIFIED" and descending_default
    )
    sign = "-" if descending else ""
    return [sign + sorts[sort], sign + "id"]


def paginate(request, queryset) -> tuple[list, dict]:
    """One page (``offset``, negative from the end; ``limit``, 0 for all, at most
    ``MAX_PAGE``) and Determined's ``v1Pagination`` (the client reads on to ``total``)."""
    total = queryset.count()
    offset = int_param(request, "offset", 0, minimum=None)
    if offset < 0:
        offset = max(total + offset, 0)
    limit = int_param(request, "limit", 0) or MAX_PAGE
    rows = list(queryset[offset : offset + min(limit, MAX_PAGE)])
    pagination = {
        "offset": offset,
        "limit": limit,
        "startIndex": offset,
        "endIndex": offset + len(rows),
        "total": total,
    }
    return rows, pagination


def filter_models(request, queryset):
    """Determined's ``GetModels`` filters over ckptweb's models."""
    params = request.query_params
    if params.get("name"):
        queryset = queryset.filter(name__icontains=params["name"])
    if params.get("description"):
        queryset = queryset.filter(description__icontains=params["description"])
    if params.get("id") not in (None, ""):
        queryset = queryset.filter(pk=int_param(request, "id"))
    for label in params.getlist("labels"):
        queryset = ModelFilterSet({"label": label}, queryset=queryset).qs
    if params.getlist("users"):
        queryset = queryset.filter(owner__username__in=params.getlist("users"))
    if params.getlist("userIds"):
        ids = []
        for text in params.getlist("userIds"):
            if not re.fullmatch(r"[0-9]{1,18}", text):
                raise ValidationError({"userIds": [f"must be integers, not {text[:40]!r}."]})
            ids.append(int(text))
        queryset = queryset.filter(owner_id__in=ids)
    if params.get("archived") == "true":  # nothing is archived in ckptweb
        queryset = queryset.none()
    names = params.getlist("workspaceNames")
    ids = params.getlist("workspaceIds")
    if (names and WORKSPACE_NAME not in names) or (ids and str(WORKSPACE_ID) not in ids):
        queryset = queryset.none()
    return queryset


# --- views ---------------------------------------------------------------------------------


class ModelsView(DetView):
    """``GET api/v1/models`` (filters, sortBy, orderBy, offset, limit); ``POST`` creates."""

    def get(self, request):
        queryset = Model.objects.select_related("owner").annotate(num_versions=Count("versions"))
        queryset = filter_models(request, queryset)
        queryset = queryset.order_by(*ordering(request, MODEL_SORTS, descending_default=False))
        models, pagination = paginate(request, queryset)
        return Response(
            {
                "models": [model_json(m, m.num_versions) for m in models],
                "pagination": pagination,
            }
        )

    def post(self, request):
        data = json_body(request)
        check_fields(
            data,
            {"name", "description", "labels", "workspaceName", "workspaceId"},
            MODEL_EMPTY_FIELDS,
        )
        check_workspace(data)
        model = registry.create_model(
            request.user, data.get("name"), data.get("description"), data.get("labels")
        )
        return Response({"model": model_body(model)})


class ModelLabelsView(DetView):
    """``GET api/v1/model/labels``: every label in use, most used first (then by name)."""

    def get(self, request):
        counts = Counter(
            label
            for labels in Model.objects.values_list("labels", flat=True).iterator()
            for label in labels or []
        )
        ordered = sorted(counts, key=lambda label: (-counts[label], label))
        return Response({"labels": ordered})


class ModelView(DetView):
    """``GET``/``PATCH``/``DELETE api/v1/models/{name or id}``."""

    def get(self, request, name):
        return Response({"model": model_body(find_model(name))})

    def patch(self, request, name):
        model = find_model(name)
        ensure_may_change_model(request, model)
        data = json_body(request)
        check_fields(
            data,
            {"name", "description", "labels", "workspaceName", "workspaceId"},
            MODEL_EMPTY_FIELDS,
        )
        check_workspace(data)
        if data.get("name") not in (None, model.name):
            raise ValidationError({"name": ["a ckptweb model cannot be renamed."]})
        registry.update_model(model, data.get("description"), data.get("labels"))
        return Response({"model": model_body(model)})

    def delete(self, request, name):
        model = find_model(name)
        ensure_may_change_model(request, model)
        registry.delete_model(model)
        return Response({})


class ModelVersionsView(DetView):
    """``GET api/v1/models/{name or id}/versions`` (sortBy, orderBy, offset, limit);
    ``POST`` registers ``checkpointUuid`` (with ``comment``) as the next version."""

    def get(self, request, name):
        model = find_model(name)
        queryset = ModelVersion.objects.filter(model=model).select_related("registered_by")
        queryset = queryset.order_by(*ordering(request, VERSION_SORTS, descending_default=True))
        versions, pagination = paginate(request, queryset)
        body = model_json(model, pagination["total"])
        return Response(
            {
                "model": body,
                "modelVersions": versions_json(versions, body),
                "pagination": pagination,
            }
        )

    def post(self, request, name):
        model = find_model(name)
        ensure_may_change_model(request, model)
        data = json_body(request)
        check_fields(data, {"checkpointUuid", "modelName", "comment"}, VERSION_EMPTY_FIELDS)
        text = data.get("checkpointUuid")
        try:
            key = uuid_lib.UUID(str(text))
        except ValueError:
            key = None
        checkpoint = Checkpoint.objects.filter(uuid=key).first() if key else None
        if checkpoint is None:
            raise ValidationError({"checkpointUuid": [f"no checkpoint with uuid {text!r:.80}."]})
        try:
            version = registry.register_version(
                model, checkpoint, request.user, data.get("comment")
            )
        except registry.RegistryError as exc:  # Determined's name of the field
            field = "checkpointUuid" if exc.field == "checkpoint" else exc.field
            raise ValidationError({field: [exc.message]}) from None
        version.model = model
        return Response({"modelVersion": versions_json([version], model_body(model))[0]})


class ModelVersionView(DetView):
    """``GET``/``DELETE api/v1/models/{name or id}/versions/{n}``."""

    def get(self, request, name, version):
        model = find_model(name)
        found = find_version(model, version)
        return Response({"modelVersion": versions_json([found], model_body(model))[0]})

    def delete(self, request, name, version):
        model = find_model(name)
        if version == registry.LATEST:
            raise ValidationError({"version": ["delete a version by its number, not 'latest'."]})
        found = find_version(model, version)
        if not may_release_pin(request.user, found):
            raise PermissionDenied(RELEASE_MESSAGE)
        registry.delete_version(found)
        return Response({})
