"""``ckpt checkpoint …``: describe, download (archive or ``--direct``), delete, rm.

    ckpt checkpoint describe UUID
    ckpt checkpoint download UUID [-o DIR] [--direct [--parallel N]]
    ckpt checkpoint download --best EXPERIMENT_ID [--trial T] [-o DIR]
    ckpt checkpoint delete UUID [--yes]
    ckpt checkpoint rm UUID --glob G [--glob G ...] [--yes]
    ckpt checkpoint upload DIR --trial T --steps S [--metadata JSON] [--uuid U] [--parallel N]

Wired into ``ckptweb.client.cli.build_parser`` with
``add_checkpoint_commands(groups, [connection])``.
"""

from __future__ import annotations

import json

from ckptweb.client import Client, human_size
from ckptweb.client.cli.common import (
    CommandError,
    ProgressBar,
    confirm,
    follow_gc_run,
    metric_text,
    non_negative,
    positive,
)
from ckptweb.client.direct import DEFAULT_PARALLEL, DirectDownload
from ckptweb.client.upload import DEFAULT_PARALLEL as UPLOAD_PARALLEL


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
            job = DirectDownload(
                client,
                uuid,
                args.output,
                parallel=args.parallel,
                progress=bar,
                retries=args.retries,
            )
            target = job.run_or_stream()
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


def checkpoint_upload(client: Client, args) -> None:
    """``ckpt checkpoint upload DIR --trial T --steps S``: upload, resuming a killed run."""
    metadata = None
    if args.metadata is not None:
        try:
            metadata = json.loads(args.metadata)
        except ValueError as exc:
            raise CommandError(f"--metadata is not JSON: {exc}") from None
        if not isinstance(metadata, dict):
            raise CommandError("--metadata must be a JSON object.")
    bar = ProgressBar(f"trial {args.trial}")
    try:
        c = client.upload_checkpoint(
            args.trial,
            args.directory,
            args.steps,
            metadata=metadata,
            uuid=args.uuid,
            parallel=args.parallel,
            progress=bar,
        )
    finally:
        bar.close()
    print(
        f"Uploaded checkpoint {c['uuid']} ({len(c['resources'])} files, "
        f"{human_size(c['size_bytes'])}) to trial {c['trial_id']}: {c['state']}"
    )


def add_checkpoint_commands(groups, parents=()) -> None:
    """Add the ``checkpoint`` group to ``ckpt``'s command groups.

    ``parents`` are the parsers giving ``--url``/``--token`` (cli.py's ``connection``).
    """
    checkpoint = groups.add_parser("checkpoint", aliases=["c"], help="checkpoints")
    c_commands = checkpoint.add_subparsers(dest="command", metavar="COMMAND")
    c_commands.required = True

    describe = c_commands.add_parser("describe", parents=list(parents), help="show one checkpoint")
    describe.add_argument("uuid", metavar="UUID")
    describe.set_defaults(handler=checkpoint_describe)

    download = c_commands.add_parser(
        "download", parents=list(parents), help="download and extract into DIR/<uuid>/"
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
        "delete", parents=list(parents), help="delete a checkpoint's files"
    )
    delete.add_argument("uuid", metavar="UUID")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=checkpoint_delete)

    rm = c_commands.add_parser(
        "rm", parents=list(parents), help="delete the files of a checkpoint matching globs"
    )
    rm.add_argument("uuid", metavar="UUID")
    rm.add_argument(
        "--glob", action="append", required=True, metavar="G", help='e.g. "code/**" (repeatable)'
    )
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(handler=checkpoint_rm)

    upload = c_commands.add_parser(
        "upload",
        parents=list(parents),
        help="upload DIR's files as a checkpoint of a trial (a re-run resumes)",
    )
    upload.add_argument("directory", metavar="DIR")
    upload.add_argument("--trial", type=non_negative, required=True, metavar="T")
    upload.add_argument("--steps", type=non_negative, required=True, metavar="S")
    upload.add_argument("--metadata", metavar="JSON", help="a JSON object")
    upload.add_argument("--uuid", metavar="U", help="the checkpoint's uuid (default: new)")
    upload.add_argument(
        "--parallel",
        type=positive,
        default=UPLOAD_PARALLEL,
        metavar="N",
        help=f"files or parts sent at once (default: {UPLOAD_PARALLEL})",
    )
    upload.set_defaults(handler=checkpoint_upload)
