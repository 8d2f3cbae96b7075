"""``ckpt login`` and ``ckpt logout``: an API token for this machine, kept in the user's
config directory (``ckptweb.client.credentials``).

    ckpt login [URL] [--username U] [--token T]
    ckpt logout

``login`` asks for the password (or reads ``CKPTWEB_PASSWORD``) and sends it once, with HTTP
Basic, to ``POST tokens``, which creates a token named ``ckpt on HOSTNAME``; with ``--token``
it checks and stores a token made on the Tokens page instead. ``logout`` revokes the token
``login`` created and removes the file.
"""

from __future__ import annotations

import getpass
import os
import socket

from ckptweb.client import ApiError, Client
from ckptweb.client.cli.common import CommandError
from ckptweb.client.credentials import load_credentials, remove_credentials, save_credentials


def token_name() -> str:
    """The name of this machine's token, as the Tokens page lists it."""
    return f"ckpt on {socket.gethostname() or 'this machine'}"[:100]


def login(client: Client, args) -> None:
    url = (args.server or client.url).rstrip("/")
    token = getattr(args, "token", None)
    if token:
        Client(url=url, token=token).request("GET", "tokens")  # 401 on a bad token
        path = save_credentials({"url": url, "token": token})
        print(f"Stored the token for {url} in {path}")
        return
    username = args.username or input("Username: ").strip()
    if not username:
        raise CommandError("a username is needed (--username)")
    password = os.environ.get("CKPTWEB_PASSWORD")
    if password is None:
        password = getpass.getpass(f"Password for {username} at {url}: ")
    created = Client(url=url, token="").request(
        "POST", "tokens", json={"name": token_name()}, auth=(username, password)
    )
    data = {"url": url, "token": created["key"], "token_id": created["id"], "username": username}
    previous = load_credentials()
    path = save_credentials(data)
    if previous and previous.get("token_id") is not None and previous["url"] == url:
        _revoke(previous)  # the token this machine had before: nothing uses it any more
    print(f"Logged in to {url} as {username}; token {created['name']!r} stored in {path}")


def _revoke(stored: dict) -> None:
    """Revoke a stored token with itself; one already revoked or expired is fine."""
    api = Client(url=stored["url"], token=stored["token"])
    try:
        api.request("DELETE", f"tokens/{int(stored['token_id'])}")
    except ApiError as exc:
        if exc.status not in (401, 404):
            raise


def logout(client: Client, args) -> None:
    stored = load_credentials()
    if stored is None:
        raise CommandError("not logged in (no stored credentials)")
    if stored.get("token_id") is not None:
        _revoke(stored)
    else:
        print("The stored token was not created by 'ckpt login': revoke it on the Tokens page.")
    remove_credentials()
    print(f"Logged out of {stored['url']}")


def add_login_commands(subparsers, parents=()) -> None:
    """Add ``login`` and ``logout`` to ``ckpt``'s command groups."""
    command = subparsers.add_parser(
        "login", parents=list(parents), help="create and store an API token for this machine"
    )
    command.add_argument("server", nargs="?", metavar="URL", help="server URL")
    command.add_argument("--username", "-u", help="your username (asked when missing)")
    command.set_defaults(handler=login)
    command = subparsers.add_parser(
        "logout", parents=list(parents), help="revoke the stored token and forget it"
    )
    command.set_defaults(handler=logout)
