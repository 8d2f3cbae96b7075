"""``ckptweb.lib.units.human_bytes``: the one size formatter, rounded for pages and the CLI,
exact for the limits that messages state."""

from __future__ import annotations

import pytest
import rest_framework.views  # noqa: F401 - before ckptweb.api, which DRF's settings import back

from ckptweb.api import BodyTooLarge
from ckptweb.lib.limits import MAX_FIELD_BYTES, InvalidInput, check_json
from ckptweb.lib.safe_yaml import MAX_YAML_BYTES, load
from ckptweb.lib.units import human_bytes


@pytest.mark.parametrize(
    ("size", "rounded", "exact"),
    [
        (0, "0 B", "0 B"),
        (1000, "1000 B", "1000 B"),
        (1536, "1.5 KiB", "1536 B"),
        (256 * 1024, "256.0 KiB", "256 KiB"),
        (1024 * 1024, "1.0 MiB", "1 MiB"),
        (1024 * 1024 + 1024, "1.0 MiB", "1025 KiB"),
        (16 * 1024 * 1024, "16.0 MiB", "16 MiB"),
        (3 * 2**40, "3.0 TiB", "3 TiB"),
        (2**50, "1.0 PiB", "1 PiB"),
        (2**60, "1024.0 PiB", "1024 PiB"),
    ],
)
def test_rounded_and_exact(size, rounded, exact):
    assert human_bytes(size) == rounded
    assert human_bytes(size, exact=True) == exact


def test_the_limits_in_messages_keep_their_text():
    with pytest.raises(InvalidInput) as refused:
        check_json({"x": "y" * MAX_FIELD_BYTES}, "metadata")
    assert refused.value.message.endswith("the limit is 1,048,576 bytes (1 MiB).")
    assert BodyTooLarge.default_detail == "request body is over the limit of 16 MiB."
    with pytest.raises(InvalidInput) as refused:
        load("x: " + "y" * MAX_YAML_BYTES, "config")
    assert refused.value.message == "config is over 256 KiB of YAML text."
