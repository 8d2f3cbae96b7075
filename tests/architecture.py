"""Import cycles between ckptweb's modules: none allowed.

docs/architecture.md, "The dependency rule".

grimp reads every ``import`` statement of the product packages, those inside functions
included, so a lazy import that only dodges a cycle at import time still counts: the two
modules still need each other. ``if TYPE_CHECKING:`` imports are left out (they never run).
Strongly connected components of the module graph are the cycles; each is reported with
one concrete loop to break.

Run as ``python -m tests.architecture`` (``make lint`` does); ``tests/test_architecture.py``
runs the same check in the suite.

The test suite's own layout is checked here too (``missing_init_files``,
``conftest_imports``): every folder of test modules is a package (the suite imports
``tests.<folder>.<module>``), and no module imports from a conftest (conftests define
fixtures; helpers are plain modules).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp

PACKAGES = ("ckptweb", "experiments", "storage")


def import_graph() -> dict[str, set[str]]:
    """Module → the product modules it imports directly (migrations left out)."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if ".migrations" not in m}
    return {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def loop_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One concrete loop a → b → … → a inside a component, for the message."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(graph[path[-1]] & members)
        back = [m for m in nxt if m in seen]
        if back:
            return path[path.index(back[0]) :] + [back[0]]
        fresh = [m for m in nxt if m not in seen]
        path.append(fresh[0])
        seen.add(fresh[0])


def report(graph: dict[str, set[str]] | None = None) -> list[str]:
    graph = import_graph() if graph is None else graph
    return [" -> ".join(loop_in(c, graph)) + f"  ({len(c)} modules)" for c in cycles(graph)]


# --- the test suite's layout ----------------------------------------------------------------


def _python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def missing_init_files(root: Path) -> list[str]:
    """Folders under ``root`` (a tests/ directory) that hold Python modules, or hold folders
    that do, without an ``__init__.py``: each one a path relative to ``root``'s parent."""
    missing = set()
    for path in _python_files(root):
        folder = path.parent
        while folder != root.parent:
            if not (folder / "__init__.py").exists():
                missing.add(folder)
            if folder == root:
                break
            folder = folder.parent
    return sorted(str(folder.relative_to(root.parent)) for folder in missing)


def conftest_imports(root: Path) -> list[str]:
    """Every import of a conftest module by a module under ``root``: ``"path:line module"``."""
    found = []
    for path in _python_files(root):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = [module] + [f"{module}.{alias.name}".lstrip(".") for alias in node.names]
            else:
                continue
            for name in names:
                if "conftest" in name.split("."):
                    where = path.relative_to(root.parent)
                    found.append(f"{where}:{node.lineno} {name}")
                    break
    return found


def main() -> int:
    problems = report()
    for line in problems:
        print(f"import cycle: {line}")
    if problems:
        print(f"{len(problems)} import cycle(s) between modules; break each one.")
        return 1
    print("no import cycles between modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
