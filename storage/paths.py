"""Path safety: nothing a user sends may escape ``<root>/<uuid>/``."""

import posixpath


class UnsafePath(ValueError):
    """A relative path that is empty, absolute, or climbs out of its root."""


def check_relative_path(path: str) -> str:
    """Return ``path`` normalised if it is a safe relative POSIX path, else raise UnsafePath.

    Rejects empty paths, NUL bytes, backslashes, absolute paths, ``.``/``..`` segments and
    empty segments (``a//b``). The returned path has no leading or trailing slash.
    """
    if not isinstance(path, str) or path == "":
        raise UnsafePath("path is empty")
    if "\x00" in path:
        raise UnsafePath("path contains a NUL byte")
    if "\\" in path:
        raise UnsafePath("path contains a backslash")
    if path.startswith("/"):
        raise UnsafePath("path is absolute")
    segments = path.rstrip("/").split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise UnsafePath(f"path segment {segment!r} is not allowed")
    normalised = posixpath.normpath(path)
    if normalised.startswith("..") or normalised.startswith("/"):
        raise UnsafePath("path escapes its root")
    return normalised
