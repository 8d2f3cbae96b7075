"""Globs selecting a checkpoint's files, and deleting the files they match.

``check_globs`` validates a request's globs; ``matching_files`` selects resource paths;
``delete_matching_files`` is what a GC run of reason FILES does (``experiments.gc.execute``),
started by ``experiments.gc.files``: it matches the globs against what storage holds as well
as ``resources``, and reports what storage holds afterwards.

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

from functools import lru_cache

from ckptweb.lib.limits import InvalidInput
from experiments.gc.record import Listed, stored_files
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
        try:
            compile_glob(glob)
        except MalformedGlob as exc:
            raise GlobError(f"{where} {glob!r} has a malformed character class: {exc}.") from None
        if glob not in checked:
            checked.append(glob)
    return checked


# --- matching: linear in the path, whatever the glob -----------------------------------------
#
# Globs are compiled to tokens and matched by simulating the automaton (a set of positions),
# never by a backtracking regex: ``*a*a*a*a*a*a*a*ab`` against 56 ``a`` is as fast as any
# other glob. A segment's cost is at most (tokens x characters); ``**`` segments are a
# table over (glob segment, path segment).

_STAR, _ONE, _CLASS, _CHAR = "*", "?", "[", "c"


class MalformedGlob(ValueError):
    """A character class that cannot match anything (``[z-a]``, ``[a--b]``)."""


def _class_items(body: str) -> list[tuple[str, str]]:
    """The ``(low, high)`` ranges of a class body, ``-`` literal at either end."""
    items, i, n = [], 0, len(body)
    while i < n:
        low = body[i]
        if i + 2 < n and body[i + 1] == "-":
            high = body[i + 2]
            if high < low:
                raise MalformedGlob(f"the range {low}-{high} in [{body}] is reversed")
            items.append((low, high))
            i += 3
        else:
            items.append((low, low))
            i += 1
    return items


def _segment_tokens(segment: str) -> tuple:
    """One glob segment (no ``/``) as tokens: ``*``, ``?``, ``[...]`` and literal characters."""
    tokens, i, n = [], 0, len(segment)
    while i < n:
        char = segment[i]
        i += 1
        if char == "*":
            while i < n and segment[i] == "*":
                i += 1
            tokens.append((_STAR, None))
        elif char == "?":
            tokens.append((_ONE, None))
        elif char == "[":
            j = i
            if j < n and segment[j] in "!^":
                j += 1
            if j < n and segment[j] == "]":
                j += 1
            while j < n and segment[j] != "]":
                j += 1
            if j >= n:
                tokens.append((_CHAR, char))  # no closing bracket: a literal "["
                continue
            body = segment[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            tokens.append((_CLASS, (negate, tuple(_class_items(body[1:] if negate else body)))))
        else:
            tokens.append((_CHAR, char))
    return tuple(tokens)


def _accepts(token, char: str) -> bool:
    kind, data = token
    if kind == _ONE:
        return True
    if kind == _CHAR:
        return char == data
    negate, items = data
    return any(low <= char <= high for low, high in items) != negate


def _segment_matches(tokens: tuple, text: str) -> bool:
    """Whether one path segment matches one glob segment's tokens (automaton simulation)."""

    def closure(states: set[int]) -> set[int]:
        out = set(states)
        for state in sorted(states):
            while state < len(tokens) and tokens[state][0] == _STAR:
                state += 1
                out.add(state)
        return out

    states = closure({0})
    for char in text:
        following = set()
        for state in states:
            if state == len(tokens):
                continue
            token = tokens[state]
            if token[0] == _STAR:
                following.add(state)  # the star takes this character and stays
            elif _accepts(token, char):
                following.add(state + 1)
        if not following:
            return False
        states = closure(following)
    return len(tokens) in states


@lru_cache(maxsize=512)
def compile_glob(glob: str) -> tuple:
    """``glob`` as a tuple of segments: ``"**"`` or a segment's tokens. MalformedGlob if bad."""
    stripped = glob.rstrip("/")
    segments = stripped.split("/") if stripped else [""]
    return tuple("**" if segment == "**" else _segment_tokens(segment) for segment in segments)


def _path_matches(compiled: tuple, parts: list[str]) -> bool:
    """Segments ``compiled`` against path segments ``parts``: a table, linear in both."""
    last = len(compiled) - 1
    # reach[k]: the glob's segments so far can end right before path segment k.
    reach = [False] * (len(parts) + 1)
    reach[0] = True
    for index, segment in enumerate(compiled):
        following = [False] * (len(parts) + 1)
        if segment == "**":
            if index == last:  # a final "**" takes whatever follows a "/", nothing included
                return any(reach[: len(parts)])
            # zero or more non-empty whole segments
            carry = False
            for k in range(len(parts) + 1):
                carry = carry or reach[k]
                following[k] = carry
                if k < len(parts) and not parts[k]:
                    carry = False  # an empty segment breaks a run of "[^/]+/"
        else:
            for k in range(len(parts)):
                if reach[k] and _segment_matches(segment, parts[k]):
                    following[k + 1] = True
        reach = following
        if not any(reach):
            return False
    return reach[len(parts)]


def glob_matches(glob: str, path: str) -> bool:
    """True when resource ``path`` is selected by ``glob``."""
    return _path_matches(compile_glob(glob), path.split("/"))


def matching_files(resources: dict[str, int], globs: list[str]) -> dict[str, int]:
    """The entries of ``resources`` (path -> bytes) matched by any of ``globs``, sorted."""
    compiled = [compile_glob(glob) for glob in globs]
    return {
        path: size
        for path, size in sorted(resources.items())
        if any(_path_matches(glob, path.split("/")) for glob in compiled)
    }


def delete_matching_files(
    backend, batch: list[Checkpoint], globs: list[str]
) -> tuple[dict[str, str], dict[str, Listed]]:
    """Delete each checkpoint's files matched by ``globs``; (errors, what storage holds now).

    The globs are matched against what storage lists under the checkpoint as well as its
    ``resources``, so a file it never reported goes too (``**`` empties the directory).
    When the storage reports an error, the checkpoint is listed again and the listing is
    the truth: matched files no longer there went, and the error stands only while one of
    them is still there. Raises UnsafePath when part of a listing cannot be checked (a
    symlink leading out of the checkpoint): nothing of it is deleted.
    """
    errors: dict[str, str] = {}
    listed: dict[str, Listed] = {}
    for checkpoint in batch:
        name = str(checkpoint.uuid)
        before = stored_files(backend, name)
        paths = list(matching_files({**checkpoint.resources, **before}, globs))
        result = backend.delete_files(name, paths) if paths else None
        if result is None or not result.errors:
            left = {path: size for path, size in before.items() if path not in set(paths)}
        else:
            left = stored_files(backend, name)
            if set(paths) & set(left):
                errors[name] = result.errors[name]
        listed[name] = Listed(left, removed=bool(set(before) - set(left)))
    return errors, listed
