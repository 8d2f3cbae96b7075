"""``ckpt experiment …``: list, list-checkpoints, set gc-policy.

    ckpt experiment list
    ckpt experiment list-checkpoints ID [--best N] [--csv]
    ckpt experiment set gc-policy ID --save-experiment-best N --save-trial-best N
                                     --save-trial-latest N [--yes]

Wired into ``ckptweb.client.cli.build_parser`` with
``add_experiment_commands(groups, [connection])``.
"""

from __future__ import annotations

import csv
import sys

from ckptweb.client import Client, human_size
from ckptweb.client.cli.common import (
    CommandError,
    confirm,
    follow_gc_run,
    metric_text,
    non_negative,
    print_table,
)

#: ``set gc-policy`` names at most this many running trials it would cut off.
RUNNING_TRIALS_SHOWN = 20
#: ``set gc-policy`` lists at most this many candidates before asking.
PREVIEW_ROWS = 20


# --- commands ------------------------------------------------------------------------------


def experiment_list(client: Client, args) -> None:
    """``ckpt experiment list``"""
    rows = [
        [e["id"], e["name"], e["owner"], e["state"], e["searcher_metric"], e["created_at"][:19]]
        for e in client.list_experiments(state=args.state)
    ]
    print_table(["ID", "Name", "Owner", "State", "Metric", "Created"], rows)


CHECKPOINT_COLUMNS = ["Trial ID", "Steps", "State", "Validation Metric", "UUID", "Size"]


def experiment_list_checkpoints(client: Client, args) -> None:
    """``ckpt experiment list-checkpoints ID [--best N] [--csv]``"""
    if args.best is not None:
        checkpoints = client.best_checkpoints(args.experiment_id, args.best)
    else:
        checkpoints = list(
            client.list_checkpoints(args.experiment_id, ordering="trial,steps_completed")
        )
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["trial_id", "steps", "state", "validation_metric", "uuid", "size_bytes"])
        for c in checkpoints:
            metric = "" if c["validation_metric"] is None else repr(c["validation_metric"])
            writer.writerow(
                [
                    c["trial_id"],
                    c["steps_completed"],
                    c["state"],
                    metric,
                    c["uuid"],
                    c["size_bytes"],
                ]
            )
        return
    rows = [
        [
            c["trial_id"],
            c["steps_completed"],
            c["state"],
            metric_text(c["validation_metric"]),
            c["uuid"],
            human_size(c["size_bytes"]),
        ]
        for c in checkpoints
    ]
    print_table(CHECKPOINT_COLUMNS, rows)


def experiment_set_gc_policy(client: Client, args) -> None:
    """``ckpt experiment set gc-policy ID --save-… N [--yes]``: preview, confirm, apply."""
    preview = client.gc_preview(
        args.experiment_id,
        save_experiment_best=args.save_experiment_best,
        save_trial_best=args.save_trial_best,
        save_trial_latest=args.save_trial_latest,
        page_size=1000,  # the id lists are whole; rows are one page, newest first
    )
    policy = preview["policy"]
    rows = [
        [
            c["trial_id"],
            c["steps_completed"],
            metric_text(c["validation_metric"]),
            c["uuid"],
            human_size(c["size_bytes"]),
            "keep" if c["keep"] else "DELETE",
        ]
        for c in sorted(preview["checkpoints"], key=lambda c: (c["trial_id"], c["steps_completed"]))
    ]
    print(
        "Policy: save_experiment_best={save_experiment_best} save_trial_best={save_trial_best} "
        "save_trial_latest={save_trial_latest}".format(**policy)
    )
    count = len(preview["deleted_ids"])
    print(
        f"This policy will delete {count} checkpoints ({human_size(preview['reclaimed_bytes'])})"
        f" and keep {len(preview['retained_ids'])}."
    )
    hidden = 0
    if preview["count"] > PREVIEW_ROWS:  # a long experiment: list only some of what goes
        deleted = [row for row in rows if row[-1] == "DELETE"]
        hidden = preview["count"] - min(len(deleted), PREVIEW_ROWS)
        rows = deleted[:PREVIEW_ROWS]
    print_table(
        [
            "Trial ID",
            "Steps",
            preview["metric_name"] or "Validation Metric",
            "UUID",
            "Size",
            "Action",
        ],
        rows,
    )
    if hidden:
        print(
            f"… and {hidden} more (the first {len(rows)} deletions are listed; "
            f"all: ckpt experiment list-checkpoints {args.experiment_id})"
        )
    running = preview.get("running_trials") or []
    if running:
        print(
            f"Warning: {len(running)} running trial(s) would lose the latest checkpoint they "
            "resume from:"
        )
        for trial in running[:RUNNING_TRIALS_SHOWN]:
            print(
                f"  trial {trial['trial_id']}: checkpoint {trial['uuid']} at step "
                f"{trial['steps_completed']}"
            )
        if len(running) > RUNNING_TRIALS_SHOWN:
            print(f"  … and {len(running) - RUNNING_TRIALS_SHOWN} more")
    if not confirm("Apply this policy?", args.yes):
        raise CommandError("aborted; nothing was changed")
    run = client.set_gc_policy(args.experiment_id, **policy)
    follow_gc_run(client, run)


def add_experiment_commands(subparsers, parents=()) -> None:
    """Add ``experiment list|list-checkpoints|set gc-policy`` to ``ckpt``'s command groups."""
    experiment = subparsers.add_parser("experiment", aliases=["e"], help="experiments")
    e_commands = experiment.add_subparsers(dest="command", metavar="COMMAND")
    e_commands.required = True

    e_list = e_commands.add_parser(
        "list", aliases=["ls"], parents=list(parents), help="list experiments"
    )
    e_list.add_argument("--state", help="only experiments in this state")
    e_list.set_defaults(handler=experiment_list)

    lcp = e_commands.add_parser(
        "list-checkpoints",
        aliases=["lc"],
        parents=list(parents),
        help="list an experiment's checkpoints",
    )
    lcp.add_argument("experiment_id", type=non_negative, metavar="ID")
    lcp.add_argument(
        "--best", type=non_negative, metavar="N", help="only the N best by validation metric"
    )
    lcp.add_argument("--csv", action="store_true", help="CSV output")
    lcp.set_defaults(handler=experiment_list_checkpoints)

    e_set = e_commands.add_parser("set", help="change an experiment setting")
    set_commands = e_set.add_subparsers(dest="setting", metavar="SETTING")
    set_commands.required = True
    gc = set_commands.add_parser(
        "gc-policy",
        parents=list(parents),
        help="preview, confirm and apply a GC policy, then follow the run",
    )
    gc.add_argument("experiment_id", type=non_negative, metavar="ID")
    for option in ("--save-experiment-best", "--save-trial-best", "--save-trial-latest"):
        gc.add_argument(
            option, type=non_negative, metavar="N", help="default: the experiment's current value"
        )
    gc.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    gc.set_defaults(handler=experiment_set_gc_policy)
