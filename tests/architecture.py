"""The shape rules import-linter cannot express: no import cycle, no shim, no crowded room.

docs/architecture.md, "The dependency rule" and "Splitting by concept".

1. **No import cycle between modules.**
grimp reads every ``import`` statement of the product packages, those inside functions
included, so a lazy import that only dodges a cycle at import time still counts: the two
modules still need each other. ``if TYPE_CHECKING:`` imports are left out (they never run).
Strongly connected components of the module graph are the cycles; each is reported with
one concrete loop to break.

2. **No module that only re-exports** (a shim that keeps an old name alive): a module whose
   body is nothing but imports (and ``__all__``). Two exceptions are the frameworks' own
   conventions: ``experiments/models/__init__.py`` (Django finds an app's models in
   ``<app>.models``) and ``experiments/tasks.py`` (Celery's autodiscovery imports
   ``<app>.tasks``).
3. **No folder with more than 20 modules side by side**: a crowd of modules is a package
   waiting to be found (split by concept, never by size).

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
ROOT = Path(__file__).resolve().parent.parent
#: Modules that only import, by the frameworks' conventions (see the module docstring).
CONVENTIONAL_INDEXES = frozenset({"experiments/models/__init__.py", "experiments/tasks.py"})
MAX_MODULES_PER_FOLDER = 20


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


def product_modules(root: Path = ROOT):
    """Every product module's path relative to ``root`` (migrations left out)."""
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if "migrations" not in relative.parts:
                yield relative


def only_reexports(source: str) -> bool:
    """True when a module's body is imports (and ``__all__``) and nothing else."""
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    rest = [
        n
        for n in body
        if not isinstance(n, ast.Import | ast.ImportFrom)
        and not (
            isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == ["__all__"]
        )
    ]
    real = [n for n in imports if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
    return bool(real) and not rest


def shims(root: Path = ROOT) -> list[str]:
    """Modules that only re-export, conventional indexes excepted."""
    return [
        str(path)
        for path in product_modules(root)
        if str(path) not in CONVENTIONAL_INDEXES and only_reexports((root / path).read_text())
    ]


def crowded_folders(root: Path = ROOT, limit: int = MAX_MODULES_PER_FOLDER) -> list[str]:
    """Folders holding more than ``limit`` modules side by side (``__init__`` not counted)."""
    counts: dict[Path, int] = {}
    for path in product_modules(root):
        if path.name != "__init__.py":
            counts[path.parent] = counts.get(path.parent, 0) + 1
    return [f"{folder} ({n} modules)" for folder, n in sorted(counts.items()) if n > limit]


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
    for path in shims():
        print(f"module only re-exports (import from where the names live): {path}")
    for folder in crowded_folders():
        print(f"more than {MAX_MODULES_PER_FOLDER} modules side by side: {folder}")
    failed = bool(problems or shims() or crowded_folders())
    if problems:
        print(f"{len(problems)} import cycle(s) between modules; break each one.")
    if failed:
        return 1
    print("no import cycles between modules, no shims, no crowded folders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
