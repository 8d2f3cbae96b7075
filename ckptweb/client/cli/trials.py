"""``ckpt trial …``: set-state.

    ckpt trial set-state TRIAL_ID STATE

Wired into ``ckptweb.client.cli.build_parser`` with ``add_trial_commands(groups, [connection])``.
"""

from __future__ import annotations

from ckptweb.client import Client
from ckptweb.client.cli.common import non_negative

#: The trial states the server takes (``experiments.choices.TrialState``); the server decides.
TRIAL_STATES = ("ACTIVE", "PAUSED", "COMPLETED", "CANCELED", "ERROR")


def trial_set_state(client: Client, args) -> None:
    """``ckpt trial set-state TRIAL_ID STATE``: end, pause or resume a trial."""
    trial = client.set_trial_state(args.trial_id, args.state.upper())
    print(f"Trial {trial['id']}: {trial['state']}")
    run = trial.get("gc_run")
    if run:
        print(
            f"Experiment {trial['experiment_id']} ended {trial['experiment_state']} (its last "
            f"running trial ended); GC run {run['id']} applies its policy."
        )


def add_trial_commands(subparsers, parents=()) -> None:
    """Add ``trial set-state`` to ``ckpt``'s command groups."""
    trial = subparsers.add_parser("trial", aliases=["t"], help="trials")
    t_commands = trial.add_subparsers(dest="command", metavar="COMMAND")
    t_commands.required = True

    set_state = t_commands.add_parser(
        "set-state",
        parents=list(parents),
        help="end a trial (COMPLETED, CANCELED, ERROR), or pause and resume it",
        description="The last running trial to end ends its experiment, and GC applies "
        "the experiment's policy.",
    )
    set_state.add_argument("trial_id", type=non_negative, metavar="TRIAL_ID")
    set_state.add_argument("state", metavar="STATE", help=", ".join(TRIAL_STATES))
    set_state.set_defaults(handler=trial_set_state)
