"""The credentials ``ckpt login`` stores: ``$XDG_CONFIG_HOME/ckptweb/credentials`` (default
``~/.config/ckptweb/credentials``), JSON ``{url, token, token_id?, username?}``, mode 0600.

``Client()`` and ``ckpt`` read it when ``CKPTWEB_URL``/``CKPTWEB_TOKEN`` are unset; its token
is sent only to its own URL.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def credentials_path() -> Path:
    """Where the credentials live (the XDG base directory rule)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ckptweb" / "credentials"


def load_credentials() -> dict | None:
    """The stored credentials, or None when there are none (or they are unreadable)."""
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("url") or not data.get("token"):
        return None
    return data


def save_credentials(data: dict) -> Path:
    """Write the credentials readable by their owner only (0600, the folder 0700)."""
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as stream:
        json.dump(data, stream, indent=2)
        stream.write("\n")
    return path


def remove_credentials() -> bool:
    """Delete the credentials file; whether there was one."""
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True
