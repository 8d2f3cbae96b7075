"""Partial deletion: remove the files of a checkpoint that match a list of globs.

``delete_files(checkpoint, globs)`` validates the globs and starts a GC run of reason FILES
for the one checkpoint. The run itself is the ordinary GC run of ``experiments.gc`` (the
same claim, batches, heartbeat and finish): it claims the checkpoint (``-> DELETING``),
asks the backend to delete the matching files (``StorageBackend.delete_files``), and only
then, for the files the storage confirmed gone, removes them from ``resources`` and
subtracts their bytes from ``size_bytes``; the state becomes PARTIALLY_DELETED, or DELETED
when no file is left. Files the storage refused stay in ``resources`` and the checkpoint
becomes ERROR, as for any failed deletion.

Glob semantics are Python's ``glob`` (``recursive=True``) applied to resource paths, the
same as ``glob.translate(pattern, recursive=True, include_hidden=True)`` of Python 3.13
(this project runs on 3.11, which lacks it, and ``fnmatch`` lets ``*`` cross ``/``):

* ``*`` matches any characters within one path segment, ``?`` one character, ``[abc]``/
  ``[!abc]`` one character of a set; none of them matches ``/``;
* a segment that is exactly ``**`` matches zero or more whole segments, so ``code/**``
  matches everything below ``code/`` and ``**/*.tmp`` every ``.tmp`` file at any depth;
* a glob is matched against the whole path; names starting with ``.`` are matched by
  wildcards too (checkpoint files are not a shell listing; Determined deletes them too).

A glob that is empty, absolute, has a ``..`` segment, a NUL or control character, or is
longer than ``MAX_GLOB_CHARS`` is a ``GlobError`` (a 400 naming ``globs``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.db import transaction

from ckptweb.errors import Conflict
from ckptweb.limits import InvalidInput
from experiments.choices import GC_RUN_TERMINAL_STATES, CheckpointState, GCReason
from experiments.models import Checkpoint, GCRun
from experiments.registry import checkpoint_registered_refusal
from experiments.services import check_not_deleting, start_gc_run

#: At most this many globs per request, each at most this long.
MAX_GLOBS = 100
MAX_GLOB_CHARS = 1024

#: States whose files may be partly deleted (the GC candidates, and ERROR as a retry).
DELETABLE_STATES = (
    CheckpointState.COMPLETED,
    CheckpointState.PARTIALLY_DELETED,
    CheckpointState.ERROR,
)


class GlobError(InvalidInput):
    """A bad list of globs (a 400 naming ``globs``); the message names the offending glob."""

    def __init__(self, message: str):
        super().__init__("globs", message)


class FilesNotDeletable(Conflict):
    """The checkpoint's files may not be deleted now (protected, registered, busy): a 409."""


def check_globs(globs) -> list[str]:
    """The globs as a de-duplicated list, or GlobError naming the first bad one."""
    if not isinstance(globs, list | tuple) or not globs:
        raise GlobError("globs must be a non-empty list of glob strings.")
    if len(globs) > MAX_GLOBS:
        raise GlobError(f"globs may hold at most {MAX_GLOBS} globs, not {len(globs)}.")
    checked: list[str] = []
    for index, glob in enumerate(globs):
        where = f"globs[{index}]"
        if not isinstance(glob, str) or not glob:
            raise GlobError(f"{where} must be a non-empty string.")
        if len(glob) > MAX_GLOB_CHARS:
            raise GlobError(f"{where} is longer than {MAX_GLOB_CHARS} characters.")
        if any(ord(char) < 32 or ord(char) == 127 for char in glob):
            raise GlobError(f"{where} contains a control character.")
        if glob.startswith("/") or "\\" in glob:
            raise GlobError(f"{where} {glob!r} must be a relative POSIX path, not absolute.")
        if ".." in glob.split("/"):
            raise GlobError(f"{where} {glob!r} must not contain a '..' segment.")
        if glob not in checked:
            checked.append(glob)
    return checked


def _segment_regex(segment: str) -> str:
    """The regex of one glob segment (no ``/`` inside): ``*``, ``?`` and ``[...]``."""
    out, i, n = [], 0, len(segment)
    while i < n:
        char = segment[i]
        i += 1
        if char == "*":
            while i < n and segment[i] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            j = i
            if j < n and segment[j] in "!^":
                j += 1
            if j < n and segment[j] == "]":
                j += 1
            while j < n and segment[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(char))  # no closing bracket: a literal "["
                continue
            body = segment[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = re.sub(r"([\\^\[&~|])", r"\\\1", body)  # literal inside a class
            out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
        else:
            out.append(re.escape(char))
    return "".join(out)


@lru_cache(maxsize=512)
def glob_regex(glob: str) -> re.Pattern:
    """The compiled regex matching the resource paths ``glob`` selects."""
    segments = glob.rstrip("/").split("/") if glob.rstrip("/") else [""]
    parts: list[str] = []
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment == "**":
            parts.append(".*" if index == last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if index == last else "/"))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def glob_matches(glob: str, path: str) -> bool:
    """True when resource ``path`` is selected by ``glob``."""
    return glob_regex(glob).match(path) is not None


def matching_files(resources: dict[str, int], globs: list[str]) -> dict[str, int]:
    """The entries of ``resources`` (path -> bytes) matched by any of ``globs``, sorted."""
    regexes = [glob_regex(glob) for glob in globs]
    return {
        path: size
        for path, size in sorted(resources.items())
        if any(regex.match(path) for regex in regexes)
    }


def refusal_reason(checkpoint: Checkpoint) -> str | None:
    """Why ``checkpoint``'s files may not be deleted, or None when they may.

    The one place that decides it: protected checkpoints and those registered as model
    versions (``experiments.registry``) are refused.
    """
    if checkpoint.protected:
        return f"checkpoint {checkpoint.uuid} is protected; unprotect it first."
    if refusal := checkpoint_registered_refusal(checkpoint):
        return refusal
    if checkpoint.state not in DELETABLE_STATES:
        return f"checkpoint {checkpoint.uuid} is {checkpoint.state}; its files cannot be deleted."
    return None


@transaction.atomic
def delete_files(checkpoint: Checkpoint, globs) -> GCRun:
    """Start a FILES run deleting the checkpoint's files matched by ``globs``.

    Conflict when the experiment is being deleted; GlobError for bad globs or globs
    matching no file; FilesNotDeletable when the checkpoint is refused (``refusal_reason``).
    """
    check_not_deleting(checkpoint.experiment)
    globs = check_globs(globs)
    checkpoint = (
        Checkpoint.objects.select_for_update().select_related("experiment").get(pk=checkpoint.pk)
    )
    reason = refusal_reason(checkpoint)
    if reason:
        raise FilesNotDeletable(reason)
    if not matching_files(checkpoint.resources, globs):
        raise GlobError(f"globs match no file of checkpoint {checkpoint.uuid}.")
    run = start_gc_run(checkpoint.experiment, GCReason.FILES, checkpoint=checkpoint)
    GCRun.objects.filter(pk=run.pk).update(globs=globs)
    run.globs = globs
    return run


def delete_matching_files(
    backend, batch: list[Checkpoint], globs: list[str]
) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Delete each checkpoint's files matched by ``globs``; (errors, paths confirmed gone)."""
    errors: dict[str, str] = {}
    gone: dict[str, set[str]] = {}
    for checkpoint in batch:
        name = str(checkpoint.uuid)
        paths = list(matching_files(checkpoint.resources, globs))
        result = backend.delete_files(name, paths) if paths else None
        gone[name] = set(paths)
        if result and result.errors:
            errors[name] = result.errors[name]
            # Only the paths the storage did not report are confirmed gone; an error for
            # the checkpoint as a whole (no per-file errors) confirms nothing.
            failed = result.object_errors
            gone[name] = {path for path in paths if failed and path not in failed}
    return errors, gone


def remaining_files(checkpoint: Checkpoint, gone) -> tuple[dict, int]:
    """The ``resources``/``size_bytes`` left once ``gone`` paths are deleted, and bytes freed."""
    resources = {path: size for path, size in checkpoint.resources.items() if path not in gone}
    left = sum(resources.values())
    return {"resources": resources, "size_bytes": left}, max(checkpoint.size_bytes - left, 0)


def resume_orphaned_deletions() -> list[int]:
    """Restart the FILES deletions whose run died: same checkpoint, same globs, a new run.

    Called by the sweep after it retired dead runs. A checkpoint a FILES run left DELETING
    must not be adopted by a SWEEP run (that would delete all of its files); it moves to a
    new FILES run with a compare-and-set on its old run, and files already gone count as
    deleted. Returns the ids of the runs started.
    """
    started = []
    orphans = Checkpoint.objects.filter(
        state=CheckpointState.DELETING,
        gc_run__reason=GCReason.FILES,
        gc_run__state__in=GC_RUN_TERMINAL_STATES,
    ).select_related("experiment", "gc_run")
    for checkpoint in list(orphans):
        dead = checkpoint.gc_run
        with transaction.atomic():
            run = start_gc_run(checkpoint.experiment, GCReason.FILES, checkpoint=checkpoint)
            GCRun.objects.filter(pk=run.pk).update(globs=dead.globs)
            moved = Checkpoint.objects.filter(
                pk=checkpoint.pk, state=CheckpointState.DELETING, gc_run_id=dead.pk
            ).update(gc_run=run)
            if not moved:  # another sweep got there first: drop this run and its enqueue
                transaction.set_rollback(True)
                continue
        started.append(run.pk)
    return started
