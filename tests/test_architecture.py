"""The layering of docs/architecture.md, "The dependency rule", checked in the suite too; and
the test suite's own layout (packages everywhere, no imports from a conftest)."""

import subprocess
import sys
from pathlib import Path

from tests import REPO as ROOT
from tests.architecture import (
    conftest_imports,
    crowded_folders,
    cycles,
    import_graph,
    loop_in,
    missing_init_files,
    only_reexports,
    report,
    shims,
)


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


def test_every_folder_of_test_modules_is_a_package(tmp_path):
    planted = tmp_path / "tests"
    (planted / "feature" / "deeper").mkdir(parents=True)
    (planted / "__init__.py").write_text("")
    (planted / "feature" / "deeper" / "__init__.py").write_text("")
    (planted / "feature" / "deeper" / "test_x.py").write_text("")
    assert missing_init_files(planted) == ["tests/feature"]  # the check sees a gap

    assert missing_init_files(ROOT / "tests") == []


def test_no_module_imports_from_a_conftest(tmp_path):
    planted = tmp_path / "tests"
    planted.mkdir()
    (planted / "test_a.py").write_text("from tests.feature.conftest import helper\n")
    (planted / "test_b.py").write_text("def f():\n    from . import conftest\n")
    (planted / "test_c.py").write_text("import tests.conftest as c\n")
    (planted / "test_ok.py").write_text("from tests.factories import client_for\n")
    found = conftest_imports(planted)
    assert [line.split(":")[0] for line in found] == [
        "tests/test_a.py",
        "tests/test_b.py",
        "tests/test_c.py",
    ]  # the check sees all three forms

    assert conftest_imports(ROOT / "tests") == []
