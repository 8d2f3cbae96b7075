"""Helpers every ``ckpt`` command module shares: errors, tables, prompts, progress.

``ckptweb.client.cli`` (the parser and ``main``) and its command modules (one per group:
``experiments``, ``trials``, ``checkpoints``, ``models``, ``storage``) all import from here,
and this module imports none of them.
"""

from __future__ import annotations

import argparse
import sys
import time

from ckptweb.client import Client, human_size


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
    """A validation metric as the tables show it: six significant digits, ``-`` for none."""
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


# --- argument types ---------------------------------------------------------------------


def non_negative(text: str) -> int:
    """An argparse type: an integer of at least 0."""
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
