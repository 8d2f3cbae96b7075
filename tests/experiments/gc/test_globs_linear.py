"""Glob matching of partial deletion is linear: no glob stalls the server for other users.

The globs were compiled to a backtracking regex, so ``*a*a*a*a*a*a*a*ab`` against a file
named 56 ``a`` held the GIL for seconds per request, and ``[z-a]`` was a 500. The matcher now
simulates the automaton; here it is held against a plain reference built on the standard
library's ``fnmatch`` (one segment at a time, ``**`` by recursion), and the attacks are
replayed through the API.
"""

from fnmatch import fnmatchcase

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.gc.globs import MalformedGlob, check_globs, compile_glob, glob_matches
from tests import factories

REDOS_GLOB = "*a*a*a*a*a*a*a*ab"
REDOS_NAME = "a" * 56


def reference(glob: str, path: str) -> bool:
    """Python's glob semantics on resource paths, written the slow and obvious way."""
    stripped = glob.rstrip("/")
    pattern = stripped.split("/") if stripped else [""]
    parts = path.split("/")

    def match(i: int, k: int) -> bool:
        if i == len(pattern):
            return k == len(parts)
        if pattern[i] == "**":
            if i == len(pattern) - 1:
                return k < len(parts)
            return match(i + 1, k) or (k < len(parts) and parts[k] != "" and match(i, k + 1))
        return k < len(parts) and fnmatchcase(parts[k], pattern[i]) and match(i + 1, k + 1)

    return match(0, 0)


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.text(alphabet=list("ab.*?[]!-/z"), max_size=12),
    st.text(alphabet=list("ab./z-[]!"), max_size=12),
)
def test_the_matcher_agrees_with_the_reference(glob, path):
    try:
        compile_glob(glob)
    except MalformedGlob:
        return  # a 400 (below); fnmatch would silently drop the reversed range
    assert glob_matches(glob, path) == reference(glob, path)


def test_a_redos_glob_is_decided_without_backtracking():
    assert not glob_matches(REDOS_GLOB, REDOS_NAME)
    assert glob_matches(REDOS_GLOB, REDOS_NAME + "b")


@pytest.mark.parametrize("glob", ["[z-a]", "weights[a--b].bin", "x/[9-0]/**"])
def test_a_malformed_class_is_a_400_naming_globs(glob):
    with pytest.raises(Exception) as error:
        check_globs([glob])
    assert error.value.field == "globs"
    assert "malformed character class" in error.value.message


@pytest.mark.django_db
def test_the_attack_through_the_api_answers_fast_and_deletes_nothing(alice_api, trial):
    (checkpoint,) = factories.add_checkpoints(trial, [(100, 0.5)])
    checkpoint.resources = {REDOS_NAME: 10, "weights.bin": 20}
    checkpoint.save(update_fields=["resources"])
    url = f"/api/v1/checkpoints/{checkpoint.uuid}/rm"
    response = alice_api.post(url, {"globs": [REDOS_GLOB]}, format="json")
    assert response.status_code == 400  # nothing matches
    assert "globs" in response.json()
    response = alice_api.post(url, {"globs": ["[z-a]"]}, format="json")
    assert response.status_code == 400
    assert "malformed character class" in str(response.json()["globs"])
    checkpoint.refresh_from_db()
    assert checkpoint.resources == {REDOS_NAME: 10, "weights.bin": 20}
    assert checkpoint.state == "COMPLETED"
