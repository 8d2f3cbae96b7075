"""The glob matcher of partial deletion: Python glob semantics with ``**`` on resource paths."""

import pytest

from experiments.gc.globs import GlobError, check_globs, glob_matches, matching_files

PATHS = [
    "model.pth",
    "code/train.py",
    "code/lib/util.py",
    "code/lib/deep/x.tmp",
    "a.tmp",
    "logs/a.tmp",
    ".hidden",
    "data[1].bin",
    "codex/readme",
]


@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        ("*.tmp", ["a.tmp"]),  # "*" never crosses "/"
        ("**/*.tmp", ["a.tmp", "code/lib/deep/x.tmp", "logs/a.tmp"]),  # "**" is zero or more dirs
        ("code/**", ["code/lib/deep/x.tmp", "code/lib/util.py", "code/train.py"]),
        ("code/*", ["code/train.py"]),
        ("code/**/*.py", ["code/lib/util.py", "code/train.py"]),
        ("code", []),  # a directory name alone matches no file
        ("?.tmp", ["a.tmp"]),
        ("[ab].tmp", ["a.tmp"]),
        ("[!a].tmp", []),
        ("data[[]1].bin", ["data[1].bin"]),
        ("*", [".hidden", "a.tmp", "data[1].bin", "model.pth"]),
        ("**", sorted(PATHS)),
        ("co*/**", ["code/lib/deep/x.tmp", "code/lib/util.py", "code/train.py", "codex/readme"]),
        ("model.pth", ["model.pth"]),
        ("model.pt?", ["model.pth"]),
        ("model.p", []),
    ],
)
def test_matches_like_python_glob(glob, expected):
    assert sorted(p for p in PATHS if glob_matches(glob, p)) == expected


def test_a_character_class_never_matches_a_slash():
    assert not glob_matches("a[/]b", "a/b")
    assert not glob_matches("a[!x]b", "a/b")


def test_matching_files_keeps_sizes_and_unions_the_globs():
    resources = {p: i for i, p in enumerate(PATHS)}
    assert matching_files(resources, ["*.tmp", "model.*"]) == {"a.tmp": 4, "model.pth": 0}


@pytest.mark.parametrize(
    ("globs", "message"),
    [
        ([], "non-empty list"),
        ("*.tmp", "non-empty list"),
        ([""], "globs[0] must be a non-empty string"),
        (["ok", 3], "globs[1] must be a non-empty string"),
        (["/etc/passwd"], "absolute"),
        (["../x"], "'..'"),
        (["code/../../x"], "'..'"),
        (["a\x00b"], "control character"),
        (["a\\b"], "absolute"),
        (["x" * 1025], "longer than 1024"),
        (["a"] * 101, "at most 100"),
    ],
)
def test_bad_globs_are_refused_naming_the_glob(globs, message):
    with pytest.raises(GlobError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_globs(globs)


def test_names_with_dots_are_fine():
    assert check_globs(["...", "..data/*", "a..b"]) == ["...", "..data/*", "a..b"]
