"""ckptweb's test suite (docs: README.md, "Tests")."""

from pathlib import Path

#: The repository's root directory (where manage.py is).
REPO = Path(__file__).resolve().parent.parent
