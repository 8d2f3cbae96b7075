"""``ckpt``: the ckptweb command line, modelled on Determined's ``det`` checkpoint commands.

    ckpt experiment list
    ckpt experiment list-checkpoints ID [--best N] [--csv]
    ckpt experiment set gc-policy ID --save-experiment-best N --save-trial-best N
                                     --save-trial-latest N [--yes]
    ckpt checkpoint describe UUID
    ckpt checkpoint download UUID [-o DIR] [--direct [--parallel N]]
    ckpt checkpoint download --best EXPERIMENT_ID [--trial T] [-o DIR]
    ckpt checkpoint delete UUID [--yes]
    ckpt checkpoint rm UUID --glob G [--glob G ...] [--yes]
    ckpt model list|describe NAME|register NAME UUID|download NAME [VERSION] [-o DIR]
    ckpt storage scan NAME
    ckpt storage delete-orphans NAME [--yes]

The server and token come from ``--url``/``--token`` or ``CKPTWEB_URL``/``CKPTWEB_TOKEN``.
Exit status: 0 success, 1 error (one line on stderr, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time

from ckptweb.cli_models import add_model_commands
from ckptweb.cli_storage import add_storage_commands
from ckptweb.client import ApiError, Client, human_size
from ckptweb.direct_download import DEFAULT_PARALLEL, download_direct

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: ``set gc-policy`` lists at most this many candidates before asking.
PREVIEW_ROWS = 20


class CommandError(Exception):
    """A failure to report on one line and exit 1."""


# --- output helpers ------------------------------------------------------------------------


def print_table(headers: list[str], rows: list[list], out=None) -> None:
    """Left-aligned columns separated by two spaces, with a header rule."""
    out = out or sys.stdout
    cells = [[str(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    print(line, file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def metric_text(value) -> str:
    return "-" if value is None else f"{value:.6g}"


def confirm(question: str, assume_yes: bool) -> bool:
    """Ask on the terminal (or read a line from stdin); EOF means no."""
    if assume_yes:
        return True
    print(f"{question} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print()
    return answer.strip().lower() in ("y", "yes")


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and (total is None or done < total):
            return
        self.last = now
        if total:
            width = 30
            filled = int(width * done / total)
            bar = "#" * filled + "." * (width - filled)
            text = f"\r{self.label} [{bar}] {100 * done // total:3d}% "
            text += f"{human_size(done)} / {human_size(total)}"
        else:
            text = f"\r{self.label} {human_size(done)}"
        self.stream.write(text.ljust(79))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def follow_gc_run(client: Client, run: dict) -> dict:
    """Print a GC run's progress until it ends; CommandError if it FAILED."""

    def show(current: dict) -> None:
        print(
            f"GC run {current['id']}: {current['state']} — deleted {current['deleted']}"
            f"/{current['total']}, failed {current['failed']}"
        )

    run = client.wait_for_gc_run(run["id"], on_change=show)
    if run["state"] == "FAILED":
        first = run["errors"][0] if run["errors"] else {}
        detail = f" (first: {first.get('checkpoint')}: {first.get('error')})" if first else ""
        raise CommandError(
            f"GC run {run['id']} failed: {run['failed']} checkpoint(s) could not be deleted{detail}"
        )
    print(f"Deleted {run['deleted']} checkpoints ({human_size(run['reclaimed_bytes'])}).")
    return run


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
    if not confirm("Apply this policy?", args.yes):
        raise CommandError("aborted; nothing was changed")
    run = client.set_gc_policy(args.experiment_id, **policy)
    follow_gc_run(client, run)


def checkpoint_describe(client: Client, args) -> None:
    """``ckpt checkpoint describe UUID``"""
    c = client.get_checkpoint(args.uuid)
    fields = [
        ("UUID", c["uuid"]),
        ("Experiment ID", c["experiment_id"]),
        ("Trial ID", c["trial_id"]),
        ("Steps completed", c["steps_completed"]),
        ("State", c["state"]),
        ("Validation metric", metric_text(c["validation_metric"])),
        ("Size", f"{human_size(c['size_bytes'])} ({c['size_bytes']} bytes)"),
        ("Protected", "yes" if c["protected"] else "no"),
        ("Registered as", ", ".join(c.get("model_versions") or []) or "-"),
        ("Reported", c["report_time"]),
    ]
    for label, value in fields:
        print(f"{label + ':':<19}{value}")
    print("Resources:")
    for path, size in sorted(c["resources"].items()):
        print(f"  {path}  {size}")
    print("Metadata:")
    print("  " + json.dumps(c["metadata"], indent=2, sort_keys=True).replace("\n", "\n  "))


def checkpoint_download(client: Client, args) -> None:
    """``ckpt checkpoint download UUID [-o DIR] [--direct]``, or ``--best EXPERIMENT_ID``."""
    uuid = args.uuid
    if args.best:
        if not uuid.isdigit():
            raise CommandError(f"--best takes an experiment id (a number), not {uuid!r}.")
        c = client.best_checkpoint(int(uuid), args.trial)
        print(
            f"Best checkpoint of experiment {uuid}"
            f"{f' trial {args.trial}' if args.trial is not None else ''}: {c['uuid']} "
            f"(trial {c['trial_id']}, {c['steps_completed']} steps, "
            f"metric {metric_text(c['validation_metric'])})"
        )
        uuid = c["uuid"]
    elif args.trial is not None:
        raise CommandError("--trial only applies with --best EXPERIMENT_ID.")
    bar = ProgressBar(uuid[:8])
    try:
        if args.direct:
            target = download_direct(
                client,
                uuid,
                args.output,
                parallel=args.parallel,
                progress=bar,
                retries=args.retries,
            )
        else:
            target = client.download_checkpoint(
                uuid, args.output, progress=bar, retries=args.retries
            )
    finally:
        bar.close()
    print(f"Downloaded checkpoint to {target}")


def checkpoint_delete(client: Client, args) -> None:
    """``ckpt checkpoint delete UUID [--yes]``"""
    c = client.get_checkpoint(args.uuid)
    question = (
        f"Delete checkpoint {c['uuid']} (trial {c['trial_id']}, {c['steps_completed']} steps, "
        f"{human_size(c['size_bytes'])})?"
    )
    if not confirm(question, args.yes):
        raise CommandError("aborted; nothing was changed")
    follow_gc_run(client, client.delete_checkpoint(c["uuid"]))


def checkpoint_rm(client: Client, args) -> None:
    """``ckpt checkpoint rm UUID --glob G…``: delete the files the globs match."""
    c = client.get_checkpoint(args.uuid)
    globs = args.glob
    question = f"Delete the files of checkpoint {c['uuid']} matching {' '.join(globs)}?"
    if not confirm(question, args.yes):
        raise CommandError("aborted; nothing was changed")
    run = client.request("POST", f"checkpoints/{c['uuid']}/rm", json={"globs": globs})["gc_run"]
    run = client.wait_for_gc_run(run["id"])
    if run["state"] == "FAILED":
        first = run["errors"][0] if run["errors"] else {}
        raise CommandError(f"GC run {run['id']} failed: {first.get('error', 'unknown error')}")
    after = client.get_checkpoint(c["uuid"])
    print(
        f"Deleted {len(c['resources']) - len(after['resources'])} file(s) "
        f"({human_size(run['reclaimed_bytes'])}); checkpoint is {after['state']}."
    )


# --- parser --------------------------------------------------------------------------------


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``ckpt`` argument parser."""
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--url", default=argparse.SUPPRESS, help="server URL (default: $CKPTWEB_URL)"
    )
    connection.add_argument(
        "--token", default=argparse.SUPPRESS, help="API token (default: $CKPTWEB_TOKEN)"
    )

    parser = argparse.ArgumentParser(
        prog="ckpt", description="Command line for ckptweb checkpoints.", parents=[connection]
    )
    groups = parser.add_subparsers(dest="group", metavar="{experiment,checkpoint,model,storage}")
    groups.required = True

    experiment = groups.add_parser("experiment", aliases=["e"], help="experiments")
    e_commands = experiment.add_subparsers(dest="command", metavar="COMMAND")
    e_commands.required = True

    e_list = e_commands.add_parser(
        "list", aliases=["ls"], parents=[connection], help="list experiments"
    )
    e_list.add_argument("--state", help="only experiments in this state")
    e_list.set_defaults(handler=experiment_list)

    lcp = e_commands.add_parser(
        "list-checkpoints",
        aliases=["lc"],
        parents=[connection],
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
        parents=[connection],
        help="preview, confirm and apply a GC policy, then follow the run",
    )
    gc.add_argument("experiment_id", type=non_negative, metavar="ID")
    for option in ("--save-experiment-best", "--save-trial-best", "--save-trial-latest"):
        gc.add_argument(
            option, type=non_negative, metavar="N", help="default: the experiment's current value"
        )
    gc.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    gc.set_defaults(handler=experiment_set_gc_policy)

    checkpoint = groups.add_parser("checkpoint", aliases=["c"], help="checkpoints")
    c_commands = checkpoint.add_subparsers(dest="command", metavar="COMMAND")
    c_commands.required = True

    describe = c_commands.add_parser("describe", parents=[connection], help="show one checkpoint")
    describe.add_argument("uuid", metavar="UUID")
    describe.set_defaults(handler=checkpoint_describe)

    download = c_commands.add_parser(
        "download", parents=[connection], help="download and extract into DIR/<uuid>/"
    )
    download.add_argument(
        "uuid", metavar="UUID", help="a checkpoint UUID (an experiment id with --best)"
    )
    download.add_argument(
        "--best",
        action="store_true",
        help="download the best live checkpoint of experiment UUID by its searcher metric",
    )
    download.add_argument(
        "--trial", type=non_negative, metavar="T", help="with --best: the best of trial T"
    )
    download.add_argument(
        "-o", "--output", default=".", metavar="DIR", help="parent directory (default: .)"
    )
    download.add_argument(
        "--retries",
        type=non_negative,
        default=3,
        help="resume an interrupted download this many times (default: 3)",
    )
    download.add_argument(
        "--direct",
        action="store_true",
        help="fetch the files straight from the object store with presigned URLs "
        "(falls back to the server's stream on shared_fs)",
    )
    download.add_argument(
        "--parallel",
        type=positive,
        default=DEFAULT_PARALLEL,
        metavar="N",
        help=f"connections of a --direct download (default: {DEFAULT_PARALLEL})",
    )
    download.set_defaults(handler=checkpoint_download)

    delete = c_commands.add_parser(
        "delete", parents=[connection], help="delete a checkpoint's files"
    )
    delete.add_argument("uuid", metavar="UUID")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=checkpoint_delete)

    rm = c_commands.add_parser(
        "rm", parents=[connection], help="delete the files of a checkpoint matching globs"
    )
    rm.add_argument("uuid", metavar="UUID")
    rm.add_argument(
        "--glob", action="append", required=True, metavar="G", help='e.g. "code/**" (repeatable)'
    )
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(handler=checkpoint_rm)
    add_model_commands(groups, parents=[connection])
    add_storage_commands(groups, parents=[connection])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ckpt`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    client = Client(url=getattr(args, "url", None), token=getattr(args, "token", None))
    try:
        args.handler(client, args)
    except (ApiError, CommandError) as exc:
        print(f"ckpt: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\nckpt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
