"""``ckpt storage …``: scan a storage and delete its orphaned directories (staff only).

    ckpt storage scan NAME [--no-wait]
    ckpt storage delete-orphans NAME [--scan ID] [--yes]

Wired into ``ckptweb.client.cli.build_parser`` with ``add_storage_commands(groups, [connection])``;
handlers take the ``ckptweb.client.Client`` built from ``--url``/``--token`` or
``CKPTWEB_URL``/``CKPTWEB_TOKEN``, like every other ``ckpt`` command.
"""

from __future__ import annotations

import sys
from urllib.parse import quote

from ckptweb.client import ApiError, Client, human_size
from ckptweb.client.cli.common import confirm


class StorageCommandError(ApiError):
    """A failure of a storage command, reported on one line (exit status 1)."""


def _storage_path(name: str) -> str:
    return f"storage/{quote(name, safe='')}/scans"


def print_scan(scan: dict, out=None) -> None:
    """A scan's summary, one class per line."""
    out = out or sys.stdout
    print(f"scan {scan['id']} of {scan['storage_name']}: {scan['state']}", file=out)
    print(
        f"  listed     {scan['directories']} directories, {scan['objects_listed']} files, "
        f"{human_size(scan['bytes_listed'])}",
        file=out,
    )
    print(f"  orphaned   {scan['orphaned']} ({human_size(scan['orphaned_bytes'])})", file=out)
    print(f"  missing    {scan['missing']} ({human_size(scan['missing_bytes'])})", file=out)
    print(f"  drifted    {scan['drifted']}", file=out)
    print(
        f"  not judged {scan['young']} inside the {scan['grace_seconds']} s grace period, "
        f"{scan['skipped']} skipped",
        file=out,
    )
    if scan.get("error"):
        print(f"  error      {scan['error']}", file=out)


def storage_scan(client: Client, args) -> None:
    """Start a scan of storage NAME (or join the running one) and print its summary."""
    scan = client.request("POST", _storage_path(args.name))
    if not scan.get("created", True):
        print(f"scan {scan['id']} is already {scan['state'].lower()}; following it")
    if args.no_wait:
        print(f"scan {scan['id']} started")
        return
    scan = client.wait_for(f"storage-scans/{scan['id']}")
    print_scan(scan)
    if scan["state"] == "FAILED":
        raise StorageCommandError(f"scan {scan['id']} failed: {scan.get('error') or 'unknown'}")


def latest_scan(client: Client, name: str) -> dict:
    """The storage's most recent successful scan, or StorageCommandError."""
    scans = client.request("GET", _storage_path(name), params={"state": "SUCCEEDED"})
    if not scans:
        raise StorageCommandError(f"storage {name} has no successful scan; run: ckpt storage scan")
    return scans[0]


def storage_delete_orphans(client: Client, args) -> None:
    """Preview the orphans of the latest (or given) scan, confirm, delete, follow progress."""
    scan_id = args.scan or latest_scan(client, args.name)["id"]
    preview = client.request("GET", f"storage-scans/{scan_id}/delete-orphans")
    if not preview["count"]:
        print(f"scan {scan_id}: no orphans left to delete")
        return
    print(
        f"scan {scan_id}: {preview['count']} orphaned director"
        f"{'y' if preview['count'] == 1 else 'ies'}, {human_size(preview['bytes'])}"
    )
    for item in preview["items"][:20]:
        print(f"  {item['uuid']}  {item['file_count']:>6} files  {human_size(item['bytes'])}")
    if preview["count"] > 20:
        print(f"  … and {preview['count'] - 20} more")
    print(
        "Each is checked again before it goes: a directory registered or written to within "
        f"{preview['grace_seconds']} s is kept."
    )
    if not confirm("Delete them?", args.yes):
        print("nothing deleted")
        return
    deletion = client.request("POST", f"storage-scans/{scan_id}/delete-orphans")
    deletion = client.wait_for(f"orphan-deletions/{deletion['id']}")
    print(
        f"deletion {deletion['id']}: {deletion['state']}: {deletion['deleted']} deleted, "
        f"{deletion['skipped']} kept, {deletion['failed']} failed, "
        f"{human_size(deletion['reclaimed_bytes'])} reclaimed"
    )
    for error in deletion["errors"]:
        print(f"  {error['uuid']}: {error['error']}", file=sys.stderr)
    if deletion["failed"]:
        raise StorageCommandError(f"{deletion['failed']} director(ies) could not be deleted")


def add_storage_commands(subparsers, parents=()) -> None:
    """Add ``storage scan`` and ``storage delete-orphans`` to ``ckpt``'s command groups.

    ``parents`` are the parsers giving ``--url``/``--token`` (cli.py's ``connection``).
    """
    storage = subparsers.add_parser("storage", aliases=["s"], help="storage reconciliation")
    commands = storage.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    scan = commands.add_parser(
        "scan",
        parents=list(parents),
        help="find orphaned directories and missing or drifted checkpoints (staff)",
    )
    scan.add_argument("name", metavar="NAME", help="storage name (or id)")
    scan.add_argument("--no-wait", action="store_true", help="start the scan and return")
    scan.set_defaults(handler=storage_scan)

    delete = commands.add_parser(
        "delete-orphans",
        parents=list(parents),
        help="preview, confirm and delete the orphans of the latest scan (staff)",
    )
    delete.add_argument("name", metavar="NAME", help="storage name (or id)")
    delete.add_argument("--scan", type=int, metavar="ID", help="a scan id (default: the latest)")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=storage_delete_orphans)
