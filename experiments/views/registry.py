"""Dashboard pages of the model registry: ``/models/``, ``/models/{name}/``, and the
"Register as model version…" action of the checkpoint page.

Anyone signed in looks; registering into a model is for its owner and staff (a model that
does not exist yet is created by the registration, owned by whoever registers). Rules and
messages come from ``experiments.registry``; the download buttons and the load snippet are
the checkpoint page's (``experiments.views.checkpoint_files.download_links``-style URLs of the
model route, ``detect_format`` and ``load_snippet``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from experiments import registry
from experiments.choices import GONE_STATES, CheckpointState
from experiments.filters import ModelFilterSet
from experiments.models import Checkpoint, Model, ModelVersion
from experiments.permissions import is_owner_or_staff, is_staff
from experiments.views.snippets import detect_format, load_snippet

MODELS_PER_PAGE = 25
#: Model names offered in the checkpoint page's "Register" form.
MODEL_CHOICES_SHOWN = 200


@login_required
@require_GET
def model_list(request):
    """Registry models: search, label filter, each with its latest version and metric."""
    filterset = ModelFilterSet(
        request.GET, queryset=Model.objects.select_related("owner").order_by("name", "id")
    )
    page = Paginator(filterset.qs, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    latest = registry.latest_versions(page)
    for model in page:
        model.latest = latest.get(model.pk)
    return render(
        request,
        "experiments/model_list.html",
        {
            "heading": "Models",
            "page": page,
            "search": request.GET.get("search", ""),
            "label": request.GET.get("label", ""),
            "filtered": bool(request.GET.get("search") or request.GET.get("label")),
        },
    )


def version_downloads(request, version: ModelVersion) -> dict:
    """Archive URLs of a version (by name), available while its checkpoint has files."""
    base = reverse("model-version-download", args=[version.model.name, version.version])
    links = {fmt: f"{base}?format={fmt}" for fmt in ("tar", "tgz", "zip")}
    return links | {"available": version.checkpoint.state not in GONE_STATES}


@login_required
@require_GET
def model_detail(request, name: str):
    """A model's versions (checkpoint, experiment, metric, size, who, when) and a snippet."""
    model = get_object_or_404(Model.objects.select_related("owner"), name=name)
    versions = list(
        model.versions.select_related("checkpoint__experiment", "registered_by").order_by(
            "-version"
        )
    )
    for version in versions:
        version.model = model
        version.download = version_downloads(request, version)
    latest = versions[0] if versions else None
    snippet = model_format = None
    if latest is not None and latest.download["available"]:
        model_format = detect_format(list(latest.checkpoint.resources or {}))
        if model_format:
            snippet = load_snippet(
                model_format,
                latest.checkpoint,
                request.build_absolute_uri(latest.download["tar"]),
            )
    return render(
        request,
        "experiments/model_detail.html",
        {
            "model": model,
            "versions": versions,
            "latest": latest,
            "format": model_format,
            "snippet": snippet,
            "can_manage": is_owner_or_staff(request.user, model),
        },
    )


def checkpoint_registry_context(request, checkpoint: Checkpoint) -> dict:
    """What the checkpoint page shows of the registry: its versions, the register form."""
    versions = list(
        checkpoint.model_versions.select_related("model").order_by("model__name", "version")
    )
    models = Model.objects.order_by("name")
    if not is_staff(request.user):
        models = models.filter(owner=request.user)
    return {
        "model_versions": versions,
        "registrable": checkpoint.state == CheckpointState.COMPLETED,
        "model_choices": list(models.values_list("name", flat=True)[:MODEL_CHOICES_SHOWN]),
    }


@login_required
@require_POST
def checkpoint_register(request, uuid):
    """Register the checkpoint as the next version of the named model (created if new)."""
    checkpoint = get_object_or_404(Checkpoint.objects.select_related("experiment"), uuid=uuid)
    back = redirect(reverse("experiments:checkpoint", args=[checkpoint.uuid]))
    name = request.POST.get("model", "").strip()
    try:
        # One transaction: a registration refused leaves no new, empty model behind.
        with transaction.atomic():
            model = Model.objects.filter(name=name).first()
            if model is None:
                model = registry.create_model(request.user, name)
            elif not is_owner_or_staff(request.user, model):
                messages.error(
                    request, f"Only the owner of {model.name} or staff may register in it."
                )
                return back
            version = registry.register_version(
                model, checkpoint, request.user, request.POST.get("comment", "")
            )
    except (registry.RegistryError, registry.RegistryConflict) as exc:
        messages.error(request, f"Not registered: {exc}")
        return back
    messages.success(
        request,
        f"Registered as {version.label}: garbage collection will keep this checkpoint.",
    )
    return back
