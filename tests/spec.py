"""The spec's GC example, once for every test that checks it: the table and its numbering.

``SPEC_TABLE`` (from ``experiments.demo``, which builds the example) lists checkpoints 1..10
as (trial, steps_completed, validation metric): trial 1 at steps 100..500, then trial 2.
``SPEC_POLICIES`` are the spec's expected outputs: for each policy (save_experiment_best,
save_trial_best, save_trial_latest) the saved checkpoints in that numbering, descending.
The ">= 5" and ">= 3" rows are checked at the bound and beyond it.

``spec_example`` builds the example, for every test that needs it (the ``spec_example``
fixture of tests/conftest.py is its experiment, on the default storage).
"""

from experiments import services
from experiments.demo import SPEC_TABLE, build_spec_example
from tests.factories import add_checkpoint, experiment_on

SPEC_POLICIES = [
    ((0, 0, 0), []),
    ((2, 0, 0), [8, 7]),
    ((5, 0, 0), [8, 7, 5, 4, 3]),
    ((9, 0, 0), [8, 7, 5, 4, 3]),
    ((0, 1, 0), [7, 5]),
    ((0, 3, 0), [8, 7, 5, 4, 3]),
    ((0, 7, 0), [8, 7, 5, 4, 3]),
    ((0, 0, 1), [10, 5]),
    ((0, 0, 3), [10, 9, 8, 5, 4, 3]),
    ((2, 1, 0), [8, 7, 5]),
    ((2, 0, 1), [10, 8, 7, 5]),
    ((0, 1, 1), [10, 7, 5]),
    ((2, 1, 1), [10, 8, 7, 5]),
]


def saved_text(saved: list[int]) -> str:
    """The saved ids as the GC page's ``data-retained-ids`` spells them: ``"8,7"``."""
    return ",".join(str(number) for number in saved)


#: The same rows as comma-separated text, for the pages.
SPEC_POLICIES_TEXT = [(policy, saved_text(saved)) for policy, saved in SPEC_POLICIES]


#: The spec's PyTorch checkpoint layout (Determined's): the files of every checkpoint, and
#: the keys of the dict that ``state-dict.pth`` holds.
PYTORCH_FILES = {"state-dict.pth", "metadata.json", "code/model_def.py", "code/const.yaml"}
PYTORCH_STATE_KEYS = {
    "models_state_dict",
    "optimizers_state_dict",
    "lr_schedulers_state_dict",
    "callbacks",
}


def spec_checkpoints(experiment) -> dict:
    """The example's checkpoints in the spec's numbering: {1..10: Checkpoint}.

    Matched by trial (in creation order) and steps, so the numbering holds whatever the
    database ids are.
    """
    trials = list(experiment.trials.order_by("id").values_list("id", flat=True))
    by_position = {(c.trial_id, c.steps_completed): c for c in experiment.checkpoints.all()}
    return {
        number: by_position[(trials[trial - 1], steps)]
        for number, (trial, steps, _metric) in enumerate(SPEC_TABLE, start=1)
    }


def spec_ids(experiment) -> dict[int, int]:
    """The example's checkpoint database ids in the spec's numbering: {1..10: id}."""
    return {number: c.pk for number, c in spec_checkpoints(experiment).items()}


def db_ids_text(ids: dict[int, int], text: str) -> str:
    """``"8,7"`` in the spec's numbering as the same checkpoints' database ids, descending."""
    numbers = [int(n) for n in text.split(",") if n]
    return ",".join(str(pk) for pk in sorted((ids[n] for n in numbers), reverse=True))


def spec_example(owner, store=None, policy=(0, 1, 1)):
    """The spec's example experiment, owned by ``owner``, and its checkpoints in the spec's
    numbering: ``(experiment, {1..10: Checkpoint})``.

    Without ``store``, as ``manage.py load_demo`` builds it (``experiments.demo``): on the
    default storage, metric ``validation_loss``, the demo's files. With a ``store`` (a
    ``tests.stores.Store`` an experiment's config names), built through the services on it
    with GC policy ``policy``: metric ``loss``, every checkpoint with
    ``tests.factories.CHECKPOINT_FILES``.
    """
    if store is None:
        experiment = build_spec_example(owner)
    else:
        experiment = experiment_on(owner, store, policy)
        trials = {1: services.create_trial(experiment), 2: services.create_trial(experiment)}
        for trial, steps, metric in SPEC_TABLE:
            add_checkpoint(trials[trial], store, steps, metric)
    return experiment, spec_checkpoints(experiment)
