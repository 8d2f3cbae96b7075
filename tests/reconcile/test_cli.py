"""``ckpt storage scan`` and ``ckpt storage delete-orphans`` against a live server."""

from __future__ import annotations

import argparse
import io

import pytest

from ckptweb.client import ApiError, Client
from ckptweb.client.cli.storage import add_storage_commands


def parse(*argv):
    parser = argparse.ArgumentParser(prog="ckpt")
    add_storage_commands(parser.add_subparsers(dest="group"))
    return parser.parse_args(argv)


@pytest.fixture
def staff_cli(transactional_db, staff, live_server):
    from ckptweb.accounts.services import create_token

    return Client(url=live_server.url, token=create_token(staff, "test")[1])


@pytest.fixture
def planted(transactional_db, fs_planter, settings):
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    fs_planter.live({"a.bin": b"abc"})
    fs_planter.orphan = fs_planter.directory({"o.bin": b"o" * 2048})
    return fs_planter


def run(client, *argv, stdin=""):
    args = parse(*argv)
    out = io.StringIO()
    import contextlib
    import sys

    with contextlib.redirect_stdout(out), pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        args.handler(client, args)
    return out.getvalue()


def test_scan_prints_the_summary(staff_cli, planted):
    output = run(staff_cli, "storage", "scan", planted.store.config.name)
    assert "SUCCEEDED" in output
    assert "orphaned   1 (2.0 KiB)" in output


def test_delete_orphans_asks_then_deletes(staff_cli, planted):
    name = planted.store.config.name
    run(staff_cli, "storage", "scan", name)

    declined = run(staff_cli, "storage", "delete-orphans", name, stdin="n\n")
    assert planted.orphan in declined and "nothing deleted" in declined
    assert (planted.store.root / planted.orphan).exists()

    output = run(staff_cli, "storage", "delete-orphans", name, "--yes")
    assert "1 deleted" in output and "2.0 KiB reclaimed" in output
    assert not (planted.store.root / planted.orphan).exists()
    assert (planted.store.root).exists()
    assert "no orphans left" in run(staff_cli, "storage", "delete-orphans", name, "--yes")


def test_non_staff_get_a_clear_error(transactional_db, alice, live_server, planted):
    from ckptweb.accounts.services import create_token

    client = Client(url=live_server.url, token=create_token(alice, "test")[1])
    with pytest.raises(ApiError, match="staff"):
        run(client, "storage", "scan", planted.store.config.name)


def test_delete_orphans_without_a_scan_says_what_to_do(staff_cli, planted):
    with pytest.raises(ApiError, match="ckpt storage scan"):
        run(staff_cli, "storage", "delete-orphans", planted.store.config.name, "--yes")
