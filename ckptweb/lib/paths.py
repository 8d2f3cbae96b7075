"""Path safety: nothing a user sends may escape ``<root>/<uuid>/``.

``check_relative_path`` is the one rule for every relative path (resource paths, object
keys, prefixes, archive members); callers that need a yes/no use ``is_safe_relative_path``.
Pure Python: no Django import, so the client can use it too.
"""

import posixpath


class UnsafePath(ValueError):
    """A relative path that is empty, absolute, or climbs out of its root."""


def check_relative_path(path: str) -> str:
    """Return ``path`` normalised if it is a safe relative POSIX path, else raise UnsafePath.

    Rejects empty paths, control characters (NUL, newlines, …), lone surrogates,
    backslashes, absolute paths, ``.``/``..`` segments and empty segments (``a//b``);
    names such as ``...`` or ``..data`` are ordinary names. The returned path has no
    leading or trailing slash.
    """
    if not isinstance(path, str) or path == "":
        raise UnsafePath("path is empty")
    if "\x00" in path:
        raise UnsafePath("path contains a NUL byte")
    if not path.isprintable():
        raise UnsafePath("path contains a control or non-printable character")
    if "\\" in path:
        raise UnsafePath("path contains a backslash")
    if path.startswith("/"):
        raise UnsafePath("path is absolute")
    segments = path.rstrip("/").split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise UnsafePath(f"path segment {segment!r} is not allowed")
    normalised = posixpath.normpath(path)
    if normalised == ".." or normalised.startswith(("../", "/")):
        raise UnsafePath("path escapes its root")
    return normalised


def is_safe_relative_path(path: str) -> bool:
    """True when ``path`` passes ``check_relative_path`` unchanged (already normalised).

    For listings, where an object key that is not exactly a safe path is skipped rather
    than refused.
    """
    try:
        return check_relative_path(path) == path
    except UnsafePath:
        return False
