"""``ckpt model …``: the model registry from the command line.

    ckpt model list [--search TEXT] [--label LABEL]
    ckpt model describe NAME
    ckpt model register NAME UUID [--comment TEXT] [--create]
    ckpt model download NAME [VERSION] [-o DIR]

Wired into ``ckptweb.client.cli.build_parser`` with ``add_model_commands(groups, [connection])``.
``VERSION`` is a number or ``latest`` (the default); a download lands in ``DIR/<uuid>/``
exactly like ``ckpt checkpoint download``, with the same resume and size checks.
"""

from __future__ import annotations

from ckptweb.client import ApiError, Client, human_size
from ckptweb.client.cli.common import ProgressBar, metric_text, print_table


def model_list(client: Client, args) -> None:
    """``ckpt model list``"""
    rows = []
    for model in client.list_models(search=args.search, label=args.label):
        latest = model["latest_version"] or {}
        rows.append(
            [
                model["name"],
                ",".join(model["labels"]) or "-",
                model["owner"],
                f"v{latest['version']}" if latest else "-",
                metric_text(latest.get("validation_metric")),
                latest.get("checkpoint", "-"),
            ]
        )
    print_table(["Name", "Labels", "Owner", "Latest", "Metric", "Checkpoint"], rows)


def model_describe(client: Client, args) -> None:
    """``ckpt model describe NAME``"""
    model = client.get_model(args.name)
    print(f"{'Name:':<13}{model['name']}")
    print(f"{'Owner:':<13}{model['owner']}")
    print(f"{'Labels:':<13}{', '.join(model['labels']) or '-'}")
    print(f"{'Created:':<13}{model['created_at']}")
    if model["description"]:
        print(f"{'Description:':<13}{model['description']}")
    rows = [
        [
            f"v{v['version']}",
            v["checkpoint"],
            v["experiment_id"],
            v["steps_completed"],
            metric_text(v["validation_metric"]),
            human_size(v["size_bytes"]),
            v["state"],
            v["registered_by"] or "-",
            v["created_at"],
        ]
        for v in model["versions"]
    ]
    print_table(
        [
            "Version",
            "Checkpoint",
            "Experiment",
            "Steps",
            "Metric",
            "Size",
            "State",
            "By",
            "Registered",
        ],
        rows,
    )


def model_register(client: Client, args) -> None:
    """``ckpt model register NAME UUID``"""
    if args.create:
        try:
            client.get_model(args.name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            client.create_model(args.name)
    version = client.register_model_version(args.name, args.uuid, args.comment or "")
    print(f"Registered checkpoint {version['checkpoint']} as {args.name} v{version['version']}")


def model_download(client: Client, args) -> None:
    """``ckpt model download NAME [VERSION] [-o DIR]``"""
    bar = ProgressBar(f"{args.name} {args.version}")
    try:
        target = client.download_model_version(
            args.name, args.version, args.output, progress=bar, retries=args.retries
        )
    finally:
        bar.close()
    print(f"Downloaded {args.name} {args.version} to {target}")


def add_model_commands(subparsers, parents=()) -> None:
    """Add ``model list|describe|register|download`` to ``ckpt``'s command groups."""
    model = subparsers.add_parser("model", aliases=["m"], help="the model registry")
    commands = model.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    listing = commands.add_parser("list", aliases=["ls"], parents=list(parents), help="models")
    listing.add_argument("--search", help="name, description or label contains TEXT")
    listing.add_argument("--label", help="only models with this label")
    listing.set_defaults(handler=model_list)

    describe = commands.add_parser(
        "describe", parents=list(parents), help="a model and its versions"
    )
    describe.add_argument("name", metavar="NAME")
    describe.set_defaults(handler=model_describe)

    register = commands.add_parser(
        "register", parents=list(parents), help="register a checkpoint as the next version"
    )
    register.add_argument("name", metavar="NAME")
    register.add_argument("uuid", metavar="UUID", help="a COMPLETED checkpoint")
    register.add_argument("--comment", help="why this version")
    register.add_argument("--create", action="store_true", help="create the model if missing")
    register.set_defaults(handler=model_register)

    download = commands.add_parser(
        "download", parents=list(parents), help="download a version into DIR/<uuid>/"
    )
    download.add_argument("name", metavar="NAME")
    download.add_argument(
        "version", nargs="?", default="latest", metavar="VERSION", help="number or latest"
    )
    download.add_argument(
        "-o", "--output", default=".", metavar="DIR", help="parent directory (default: .)"
    )
    download.add_argument(
        "--retries", type=int, default=3, help="resume an interrupted download N times"
    )
    download.set_defaults(handler=model_download)
