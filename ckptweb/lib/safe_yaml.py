"""YAML that any user may send: parsed within fixed limits, into plain JSON values.

Experiment configs arrive as YAML text from any signed-in user (docs/architecture.md "Limits and bad
input"). ``yaml.safe_load`` alone is not enough: 456 bytes of nested aliases expand to
hundreds of megabytes, a 5000-digit integer raises inside the constructor, dates become
``datetime`` objects that JSON cannot store, and ``!!binary``/``!!set`` make bytes and sets.
``load`` parses in three steps, each bounded before the next may cost anything:

1. the text is at most ``MAX_YAML_BYTES``; its *events* are read (no recursion, aliases
   not followed) and nesting deeper than ``MAX_DEPTH`` stops the parse at once;
2. the composed node graph is walked with aliases followed, counting every node as if
   expanded: past ``MAX_CONFIG_NODES`` nodes or ``MAX_DEPTH`` levels the config is refused
   (an alias bomb stops after 10,000 steps, in milliseconds). The walk also refuses tags
   other than the JSON ones, duplicate keys, non-scalar keys and over-long integers;
3. only then is the graph constructed, with dates and timestamps kept as strings, and the
   result is checked by ``ckptweb.lib.limits.check_json`` (finite numbers, Unicode, size).

Every refusal is a ``InvalidInput`` whose message names the key path and, where known, line.
"""

from __future__ import annotations

import yaml

from ckptweb.lib.limits import (
    MAX_CONFIG_NODES,
    MAX_DEPTH,
    InvalidInput,
    check_json,
    check_text,
    printable,
)
from ckptweb.lib.units import human_bytes

MAX_YAML_BYTES = 256 * 1024
#: Longest integer literal accepted (2**63 has 19 digits; leave room for signs and ``_``).
MAX_INT_LITERAL = 32

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
ALLOWED_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "map", "seq")}
_MERGE = _TAG + "merge"


class _Loader(_BASE):
    """The safe loader, less the implicit timestamp resolver: dates stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TAG + "timestamp"]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}


def _where(node) -> str:
    mark = getattr(node, "start_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def _check_events(text: str, field: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidInput(
                    field,
                    f"{field} is nested deeper than {MAX_DEPTH} levels{_where(event)}.",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_graph(root, field: str) -> None:
    """Walk the node graph as if aliases were expanded; refuse what JSON cannot hold."""
    stack = [(root, field, 1)]
    nodes = 0
    while stack:
        node, path, depth = stack.pop()
        nodes += 1
        if nodes > MAX_CONFIG_NODES:
            raise InvalidInput(
                field,
                f"{field} has more than {MAX_CONFIG_NODES:,} values once its aliases are expanded.",
            )
        if depth > MAX_DEPTH:
            raise InvalidInput(field, f"{field} is nested deeper than {MAX_DEPTH} levels.")
        if node.tag not in ALLOWED_TAGS:
            shown = node.tag.removeprefix(_TAG)
            raise InvalidInput(
                field,
                f"{path}{_where(node)}: the {printable(shown)} tag is not allowed; "
                "use strings, numbers, booleans, lists and mappings.",
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TAG + "int" and len(node.value) > MAX_INT_LITERAL:
                raise InvalidInput(
                    field,
                    f"{path}{_where(node)}: integers must be within ±(2**63 - 1).",
                )
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(node.value))
        else:
            seen = set()
            for key, value in node.value:
                if key.tag == _MERGE:
                    stack.append((value, path, depth))
                    continue
                if not isinstance(key, yaml.ScalarNode) or key.tag not in ALLOWED_TAGS:
                    raise InvalidInput(
                        field, f"{path}{_where(key)}: keys must be plain strings or numbers."
                    )
                child = f"{path}.{printable(key.value)}"
                if key.value in seen:
                    raise InvalidInput(field, f"{child}{_where(key)}: duplicate key.")
                seen.add(key.value)
                stack.append((value, child, depth + 1))


def load(text: str, field: str = "config"):
    """Parse ``text`` within the limits above; raise InvalidInput, or yaml.YAMLError for syntax."""
    check_text(text, field)
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise InvalidInput(
            field, f"{field} is over {human_bytes(MAX_YAML_BYTES, exact=True)} of YAML text."
        )
    _check_events(text, field)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node, field)
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    _stringify_keys(data)
    return check_json(data, field, max_nodes=MAX_CONFIG_NODES)


def _json_key(key) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _stringify_keys(data) -> None:
    """Numeric and boolean keys (``1: x``) become the strings JSON would make of them."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in [key for key in item if not isinstance(key, str)]:
                item[_json_key(key)] = item.pop(key)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
