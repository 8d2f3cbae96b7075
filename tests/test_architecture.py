"""The layering of docs/architecture.md, "The dependency rule", checked in the suite too."""

import subprocess
import sys
from pathlib import Path

from tests.architecture import (
    crowded_folders,
    cycles,
    import_graph,
    loop_in,
    only_reexports,
    report,
    shims,
)

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_cycle_between_modules():
    assert report() == []


def test_the_cycle_check_finds_a_planted_cycle_lazy_imports_included():
    graph = import_graph()
    assert "ckptweb.lib.paths" in graph["storage.backends.base"]
    # What a function-level ``from storage.backends import base`` inside storage/paths.py
    # would add to the graph: the loop base -> paths -> base.
    planted = {**graph, "ckptweb.lib.paths": graph["ckptweb.lib.paths"] | {"storage.backends.base"}}
    found = [c for c in cycles(planted) if "ckptweb.lib.paths" in c]
    assert found and "storage.backends.base" in found[0]
    loop = loop_in(found[0], planted)
    assert loop[0] == loop[-1] and len(loop) >= 3


def test_import_linter_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_ckpt_entry_point_loads_neither_django_nor_celery():
    """import-linter sees imports, not what a package's ``__init__`` drags in at run time."""
    probe = (
        "import sys, ckptweb.client.cli;"
        "print(sorted({'django', 'celery', 'kombu', 'rest_framework'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_no_module_only_re_exports():
    assert shims() == []


def test_a_planted_shim_is_found(tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "old_name.py").write_text(
        '"""Kept for old imports."""\n\nfrom experiments.gc.execute import execute_run\n\n'
        '__all__ = ["execute_run"]\n'
    )
    (tmp_path / "experiments" / "real.py").write_text("import os\n\nX = os.sep\n")
    assert shims(tmp_path) == ["experiments/old_name.py"]
    assert not only_reexports('"""Docstring only."""\n')


def test_no_folder_has_more_than_twenty_modules(tmp_path):
    assert crowded_folders() == []
    crowded = tmp_path / "storage" / "crowd"
    crowded.mkdir(parents=True)
    for n in range(21):
        (crowded / f"m{n}.py").write_text("")
    assert crowded_folders(tmp_path) == ["storage/crowd (21 modules)"]
