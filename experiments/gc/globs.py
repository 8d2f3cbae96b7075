"""Globs selecting a checkpoint's files, and deleting the files they match.

``check_globs`` validates a request's globs; ``matching_files`` selects resource paths;
``delete_matching_files`` and ``remaining_files`` are what a GC run of reason FILES does
(``experiments.gc.execute``), started by ``experiments.gc.files``.

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

from ckptweb.lib.limits import InvalidInput
from experiments.models import Checkpoint

#: At most this many globs per request, each at most this long.
MAX_GLOBS = 100
MAX_GLOB_CHARS = 1024


class GlobError(InvalidInput):
    """A bad list of globs (a 400 naming ``globs``); the message names the offending glob."""

    def __init__(self, message: str):
        super().__init__("globs", message)


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
