"""What a JSON value must be before ckptweb stores it (docs/architecture.md "Limits and bad input").

Any signed-in user can send anything, and training code writes ``metadata.json`` files that
imports read: nothing they send may be stored in a shape that breaks a page, a list or a GC
run for someone else. This module is the one place that says what a storable JSON value is;
the API's JSON parser (``ckptweb.api.LimitedJSONParser``), the experiment services (config,
hparams, metrics, metadata, resources), ``import_checkpoints`` and the reconciliation import
all call it, so they refuse the same things with the same messages.

A storable value is made of dicts with string keys, lists, strings, finite floats, integers
within ±(2**63 - 1), booleans and null; at most ``MAX_DEPTH`` levels deep; at most
``MAX_FIELD_BYTES`` when encoded; every string and key valid Unicode (no lone surrogate:
PostgreSQL and UTF-8 encoders refuse them) with no NUL (PostgreSQL cannot store it).
Why these numbers:
- 64-bit integers: SQLite's JSON functions and orjson (the API's renderer) stop there;
- depth 32: real configs and metadata nest a handful of levels, while Python's recursion in
  ``json``, ``copy.deepcopy`` and the template engine fails near a thousand;
- 1 MiB per field: metadata and hparams are read on every page that shows them.

The walk is iterative, so a value nested 100,000 deep is refused without recursing.
"""

from __future__ import annotations

import json
import math

import orjson

from ckptweb.lib.units import human_bytes

MAX_DEPTH = 32
MAX_FIELD_BYTES = 1024 * 1024
MAX_CONFIG_NODES = 10_000
MAX_RESOURCES = 100_000
MAX_FILE_BYTES = 2**50
MAX_PATH_LENGTH = 4096
MAX_INT = 2**63 - 1
#: A request body larger than this is a JSON 413 (``DATA_UPLOAD_MAX_MEMORY_SIZE``).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Longest string shown of an offending key inside an error message.
_SHOWN = 40


class InvalidInput(ValueError):
    """Bad input from a user or from storage; ``field`` names it, the message says why.

    The base of every "this input is refused" error (``ConfigError``, ``ReportError``), so
    the API's exception handler turns any of them into a 400 naming the field.
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def printable(text: str, limit: int = _SHOWN) -> str:
    """``text`` made safe to put in an error message, a log line or a page.

    Lone surrogates, NUL and other control characters are written as escapes, so the
    message itself can be encoded, stored and rendered; long text is cut.
    """
    shown = text[:limit]
    out = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in shown)
    return out + ("…" if len(text) > limit else "")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL, a lone surrogate), or None when it can."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (it contains a lone surrogate)"
    return None


def check_text(text, field: str, max_length: int | None = None) -> str:
    """A single string field (a name, a glob, a path): valid Unicode, no NUL, not too long."""
    if not isinstance(text, str):
        raise InvalidInput(field, f"{field} must be a string.")
    problem = text_problem(text)
    if problem:
        raise InvalidInput(field, f"{field} {problem}.")
    if max_length is not None and len(text) > max_length:
        raise InvalidInput(field, f"{field} must be at most {max_length} characters.")
    return text


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{printable(key)}" if path else printable(key)


def _path(field: str, trail) -> str:
    """The text of a ``check_json`` trail: ``metadata.run[2].notes``."""
    keys = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    path = field
    for key in reversed(keys):
        path = _join(path, key)
    return path


def check_json(
    value,
    field: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_bytes: int | None = MAX_FIELD_BYTES,
    max_nodes: int | None = None,
    walked: bool = False,
):
    """Return ``value`` if it is a storable JSON value, else raise InvalidInput naming the part.

    ``field`` names the value (``metadata``); errors name the path inside it
    (``metadata.run.notes: must not contain NUL characters.``). ``max_nodes`` bounds the
    number of values (configs: ``MAX_CONFIG_NODES``). ``walked``: the value is part of a
    request body that ``ckptweb.api.LimitedJSONParser`` checked (every value of it, with
    ``max_bytes=None``), so only ``max_bytes`` is left: one walk per value.
    """
    if walked:
        return check_json_bytes(value, field, max_bytes)
    # Paths are built only for an error: a trail is (parent trail, key), so a valid value
    # of many keys costs no string formatting (batch ingest checks 1,000 reports at once).
    stack = [(value, None, 0)]
    nodes = 0
    while stack:
        item, trail, depth = stack.pop()
        nodes += 1
        if max_nodes is not None and nodes > max_nodes:
            raise InvalidInput(field, f"{field} has more than {max_nodes:,} values.")
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise InvalidInput(field, f"{_path(field, trail)}: strings {problem}.")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -MAX_INT <= item <= MAX_INT:
                raise InvalidInput(
                    field,
                    f"{_path(field, trail)}: integers must be within ±(2**63 - 1); "
                    "use a float or a string.",
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                path = _path(field, trail)
                raise InvalidInput(field, f"{path}: numbers must be finite, not {item!r}.")
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise InvalidInput(field, f"{field} is nested deeper than {max_depth} levels.")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        path = _join(_path(field, trail), str(key))
                        raise InvalidInput(field, f"{path}: keys must be strings, not {key!r}.")
                    problem = text_problem(key)
                    if problem:
                        path = _join(_path(field, trail), key)
                        raise InvalidInput(field, f"{path}: keys {problem}.")
                    stack.append((child, (trail, key), depth + 1))
            else:
                stack.extend((child, (trail, i), depth + 1) for i, child in enumerate(item))
        else:
            path = _path(field, trail)
            raise InvalidInput(field, f"{path}: {type(item).__name__} is not a JSON value.")
    return check_json_bytes(value, field, max_bytes)


def check_json_bytes(value, field: str, max_bytes: int | None = MAX_FIELD_BYTES):
    """The size rule of ``check_json`` alone (none when ``max_bytes`` is None), for a value
    whose parts it already checked (the API's parser walks every value of a body)."""
    if max_bytes is None:
        return value
    size = len(orjson.dumps(value))
    if size > max_bytes:
        raise InvalidInput(
            field,
            f"{field} is {size:,} bytes of JSON; the limit is {max_bytes:,} bytes "
            f"({human_bytes(max_bytes, exact=True)}).",
        )
    return value


def check_size(size, field: str) -> int:
    """One file's size: a non-negative integer of at most 2**50 bytes (1 PiB)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInput(field, f"{field} must be a non-negative integer, not {size!r}.")
    if size > MAX_FILE_BYTES:
        raise InvalidInput(field, f"{field} is over the limit of 2**50 bytes (1 PiB) per file.")
    return size


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed: numbers must be finite")


def decode_json(raw: bytes | str, field: str):
    """Decode JSON text from a request body or a file on storage (not yet checked).

    ``NaN``/``Infinity`` literals, nesting deep enough to exhaust Python's recursion and
    invalid UTF-8 are an ``InvalidInput`` naming ``field``, never the decoder's exception.
    """
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidInput(field, f"{field} is nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:
        raise InvalidInput(
            field, f"{field} is not valid JSON: {printable(str(exc), 120)}"
        ) from None


def parse_json(raw: bytes | str, field: str, **limits):
    """``decode_json``, then ``check_json`` (numbers overflowing to infinity included)."""
    return check_json(decode_json(raw, field), field, **limits)
