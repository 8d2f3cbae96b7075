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
    ckpt trial set-state TRIAL_ID STATE
    ckpt storage scan NAME
    ckpt storage delete-orphans NAME [--yes]
    ckpt login [URL] [--username U] [--token T]
    ckpt logout

The server and token come from ``--url``/``--token``, ``CKPTWEB_URL``/``CKPTWEB_TOKEN``, or
the credentials ``ckpt login`` stored (``ckptweb.client.credentials``).
Exit status: 0 success, 1 error (one line on stderr, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys

from ckptweb.client import ApiError, Client
from ckptweb.client.cli.checkpoints import add_checkpoint_commands
from ckptweb.client.cli.common import CommandError
from ckptweb.client.cli.experiments import add_experiment_commands
from ckptweb.client.cli.login import add_login_commands
from ckptweb.client.cli.models import add_model_commands
from ckptweb.client.cli.storage import add_storage_commands
from ckptweb.client.cli.trials import add_trial_commands

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
# --- parser --------------------------------------------------------------------------------


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
    groups = parser.add_subparsers(
        dest="group", metavar="{experiment,trial,checkpoint,model,storage,login,logout}"
    )
    groups.required = True

    add_experiment_commands(groups, parents=[connection])
    add_trial_commands(groups, parents=[connection])
    add_checkpoint_commands(groups, parents=[connection])
    add_model_commands(groups, parents=[connection])
    add_storage_commands(groups, parents=[connection])
    add_login_commands(groups, parents=[connection])
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
