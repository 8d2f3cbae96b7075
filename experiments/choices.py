"""State enums of the experiments app, each with its state machine in the docstring.

The only source of these states: models, services, filters, serializers and the pages import
them from here. A GC run's lifecycle is every run's, ``ckptweb.jobs.RunState``.
"""

from django.db import models


class ExperimentState(models.TextChoices):
    """Lifecycle of an experiment.

    ACTIVE <-> PAUSED; ACTIVE | PAUSED -> COMPLETED | CANCELED | ERROR (terminal: GC runs),
    set through the API, or when its last running trial ends (``services.set_trial_state``);
    any -> DELETING (files are being removed; the rows go once none is left).
    """

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    ERROR = "ERROR"
    DELETING = "DELETING"


#: Experiments still training: no automatic run applies their policy, and a policy change
#: warns about the running trials whose latest checkpoint it deletes.
EXPERIMENT_RUNNING_STATES = (ExperimentState.ACTIVE, ExperimentState.PAUSED)

EXPERIMENT_TERMINAL_STATES = (
    ExperimentState.COMPLETED,
    ExperimentState.CANCELED,
    ExperimentState.ERROR,
)


class TrialState(models.TextChoices):
    """Lifecycle of a trial (``services.set_trial_state``, the one writer).

    ACTIVE <-> PAUSED; ACTIVE | PAUSED -> COMPLETED | CANCELED | ERROR (terminal: no change
    after). When the last running trial of an experiment ends, the experiment ends.
    """

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    ERROR = "ERROR"


#: Trials that may still resume from their latest checkpoint (in a running experiment).
TRIAL_RUNNING_STATES = (TrialState.ACTIVE, TrialState.PAUSED)

TRIAL_TERMINAL_STATES = (TrialState.COMPLETED, TrialState.CANCELED, TrialState.ERROR)


class CheckpointState(models.TextChoices):
    """Lifecycle of a checkpoint's files.

    COMPLETED -> DELETING (claimed by a GC run) -> DELETED (files confirmed gone)
                                               -> PARTIALLY_DELETED (some files gone)
                                               -> ERROR (deletion failed; retried by the sweep)
    ERROR | PARTIALLY_DELETED -> DELETING (retry).
    ERROR -> COMPLETED | PARTIALLY_DELETED (the sweep checks storage; the policy decides).
    Only COMPLETED and PARTIALLY_DELETED are GC candidates; DELETED is terminal.
    """

    COMPLETED = "COMPLETED"
    DELETING = "DELETING"
    DELETED = "DELETED"
    PARTIALLY_DELETED = "PARTIALLY_DELETED"
    ERROR = "ERROR"


GC_CANDIDATE_STATES = (CheckpointState.COMPLETED, CheckpointState.PARTIALLY_DELETED)
#: States whose files may be deleted, wholly or in part, and a GC run may claim: the GC
#: candidates, and ERROR (a retry).
DELETABLE_STATES = (*GC_CANDIDATE_STATES, CheckpointState.ERROR)
#: States whose files are gone or going: downloads answer 410 Gone.
GONE_STATES = (CheckpointState.DELETING, CheckpointState.DELETED)


class GCReason(models.TextChoices):
    """Why a GC run was started."""

    POLICY_CHANGED = "POLICY_CHANGED", "Policy changed"
    EXPERIMENT_TERMINAL = "EXPERIMENT_TERMINAL", "Experiment ended"
    EXPERIMENT_DELETED = "EXPERIMENT_DELETED", "Experiment deleted"
    CHECKPOINT_DELETED = "CHECKPOINT_DELETED", "Checkpoint deleted"
    SWEEP = "SWEEP", "Periodic sweep"
    FILES = "FILES", "Files deleted"
