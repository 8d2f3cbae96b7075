"""The load snippet quotes every path: pasting it runs nothing a file name smuggled in.

The rendered snippet is run by a real bash in a temporary directory, with ``curl``, ``tar``
and ``python3`` replaced by stubs (no network; ``python3`` only records the program it is
given), then the recorded program is parsed to check it loads exactly the evil path.
"""

import ast
import os
import re
import subprocess
import uuid
from html import unescape
from pathlib import Path

import pytest

from experiments import services
from experiments.demo import checkpoint_root
from tests.experiments.pages.helpers import page

pytestmark = pytest.mark.django_db

EVIL_DIRECTORIES = [
    "a\nEOF\ntouch pwned #",
    "b\nEOF\ntouch pwned\n",
    "$(touch pwned)",
    "`touch pwned`",
    "c'; touch pwned; '",
    'd"); __import__("os").system("touch pwned"); ("',
    "e\r\nEOF\r\ntouch pwned",
]
STUBS = {
    "curl": "#!/bin/sh\nexit 0\n",
    "tar": "#!/bin/sh\nexit 0\n",
    "python3": '#!/bin/sh\ncat > "$SNIPPET_PROGRAM"\n',
}


def checkpoint_in_directory(experiment, directory: str):
    """A reported checkpoint whose storage holds ``<directory>/state-dict.pth``.

    The page lists files from storage, which training code fills with any names it likes;
    the report itself names a harmless path (input validation may refuse control characters).
    """
    checkpoint_uuid = uuid.uuid4()
    target = Path(checkpoint_root(experiment.storage)) / str(checkpoint_uuid) / directory
    target.mkdir(parents=True)
    (target / "state-dict.pth").write_bytes(b"\0")
    return services.report_checkpoint(
        experiment.trials.first(), 900, resources={"state-dict.pth": 1}, uuid=checkpoint_uuid
    )


def rendered_snippet(client, checkpoint) -> str:
    html = page(client, checkpoint)
    match = re.search(r'<pre class="code" id="load-snippet">(.*?)</pre>', html, re.S)
    assert match, "the page shows no load snippet"
    return unescape(match.group(1))


def run_in_bash(snippet: str, tmp_path) -> tuple[subprocess.CompletedProcess, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    program = tmp_path / "program.py"
    result = subprocess.run(
        ["bash", "-s"],
        input=snippet,
        cwd=work,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "SNIPPET_PROGRAM": str(program),
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, program.read_text() if program.exists() else ""


def loaded_path(program: str) -> str:
    """The argument of ``torch.load(...)`` in the recorded program."""
    for node in ast.walk(ast.parse(program)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load":
            return ast.literal_eval(node.args[0])
    raise AssertionError(f"no torch.load in {program!r}")


@pytest.mark.parametrize("directory", EVIL_DIRECTORIES)
def test_pasting_the_snippet_runs_no_smuggled_command(
    alice_client, spec_example, tmp_path, directory
):
    checkpoint = checkpoint_in_directory(spec_example, directory)
    snippet = rendered_snippet(alice_client, checkpoint)
    result, program = run_in_bash(snippet, tmp_path)
    assert result.returncode == 0, result.stderr
    target = f"ckpt-{str(checkpoint.uuid)[:8]}"
    assert os.listdir(tmp_path / "work") == [target]  # only the snippet's own mkdir
    assert not list(tmp_path.rglob("pwned")), "a smuggled command ran"
    assert loaded_path(program) == f"{target}/{directory}/state-dict.pth"
