"""Who may do what through the API.

Any signed-in user reads everything. Changing an experiment (state, GC policy, deletion),
its checkpoints (metadata, protection, deletion) or reporting into it (trials,
validations, checkpoints) is for the experiment's owner and staff. A registry Model (and
its versions) is changed by the model's owner and staff; registering a checkpoint needs
only read access to it, i.e. any signed-in user may pin any checkpoint into a model they
may change. Storage configuration and reconciliation are staff only.

The one "who may" module: the API's permission classes, the pages' checks
(``can_manage``, ``staff_required``) and ``/det-compat/`` all ask it.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from rest_framework.permissions import SAFE_METHODS, BasePermission

from ckptweb.audit.models import AuditEvent
from experiments.models import Checkpoint, Experiment, GCRun, Model, ModelVersion, Trial, Validation


def experiment_owner_id(obj) -> int | None:
    """The owner id of the experiment ``obj`` belongs to (experiment, trial, checkpoint…)."""
    if isinstance(obj, Experiment):
        return obj.owner_id
    if isinstance(obj, Trial | Checkpoint | GCRun):
        return obj.experiment.owner_id
    if isinstance(obj, Validation):
        return obj.trial.experiment.owner_id
    return None


def owner_id(obj) -> int | None:
    """Who owns ``obj``: the registry model's owner, else the experiment's."""
    if isinstance(obj, Model):
        return obj.owner_id
    if isinstance(obj, ModelVersion):
        return obj.model.owner_id
    return experiment_owner_id(obj)


def is_staff(user) -> bool:
    """True for a signed-in staff user."""
    return bool(user and user.is_authenticated and user.is_staff)


def is_owner_or_staff(user, obj) -> bool:
    """True for staff, and for the owner of ``obj`` (its model or experiment)."""
    if not (user and user.is_authenticated):
        return False
    return bool(user.is_staff) or owner_id(obj) == user.pk


def may_release_pin(user, version: ModelVersion) -> bool:
    """Who may delete a model version: the model's owner, staff, and also the owner of the
    pinned checkpoint's experiment, so nobody can make another user's data undeletable by
    registering it."""
    if is_owner_or_staff(user, version):
        return True
    return bool(user and user.is_authenticated) and (
        version.checkpoint.experiment.owner_id == user.pk
    )


def can_manage(user, experiment: Experiment) -> bool:
    """Owners and staff may change an experiment; everyone else only looks."""
    return is_owner_or_staff(user, experiment)


def staff_required(view):
    """Pages for signed-in staff only: anonymous users go to the login page, others get 403."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_staff(request.user):
            raise PermissionDenied("Only staff can see and reconcile storage.")
        return view(request, *args, **kwargs)

    return wrapper


class IsOwnerOrStaffOrReadOnly(BasePermission):
    """Signed-in users read; only the experiment's owner or staff change it.

    Views whose *reads* are not free (none today) can subclass and override
    ``has_object_permission``. Object checks run on ``get_object()`` and on the parent
    object of nested actions (``trials/{id}/checkpoints``).
    """

    message = "Only the experiment's owner or staff may change it."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return is_owner_or_staff(request.user, obj)


class IsStaff(BasePermission):
    """Staff only (storage configuration)."""

    message = "Only staff may see storage configuration."

    def has_permission(self, request, view) -> bool:
        return is_staff(request.user)


def visible_audit_events(user):
    """The audit events ``user`` may read: staff all; others those about their experiments
    and models, and their own actions (sign-ins, tokens)."""
    events = AuditEvent.objects.all()
    if user.is_staff:
        return events
    return events.filter(Q(owner_id=user.pk) | Q(actor_id=user.pk))
