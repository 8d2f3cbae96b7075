"""Path safety: nothing a user sends may escape ``<root>/<uuid>/``."""

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
