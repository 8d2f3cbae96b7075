"""A password hasher under which both web logins and Determined's pre-hashed logins verify.

``det user login`` never sends the password: it sends ``sha512_hex(DET_SALT + password)``
with ``isHashed: true`` (``determined/common/api/authentication.py``, ``salt_and_hash``).
So this hasher stores PBKDF2 of that *pre-hash*, not of the password:

* a web login (Django hands the raw password to ``verify``) pre-hashes it, then PBKDF2;
* a Determined login hands the pre-hash to ``verify_prehashed``, which skips that step.

It is first in ``PASSWORD_HASHERS``; Django's ``check_password`` re-encodes a password
whose stored hash uses another algorithm (``must_update``), so existing ``pbkdf2_sha256``
users move to this hasher at their next web login. Until then a ``det`` login cannot
verify them (ckptweb never sees their raw password); the login error says so.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils.crypto import constant_time_compare

#: ``determined.common.api.authentication.PASSWORD_SALT`` of determined 0.38.1.
DET_SALT = "GubPEmmotfiK9TMD6Zdw"


def det_prehash(password: str) -> str:
    """What Determined's client sends for ``password``: sha512 hex of the salt + password.

    Like the client, an empty password stays empty.
    """
    if not password:
        return password
    return hashlib.sha512((DET_SALT + password).encode()).hexdigest()


class DeterminedPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2-SHA256 of ``det_prehash(password)``; see the module docstring."""

    algorithm = "det_pbkdf2_sha256"

    def encode(self, password, salt, iterations=None):
        return self._encode_prehashed(det_prehash(password), salt, iterations)

    def _encode_prehashed(self, prehash: str, salt: str, iterations: int | None = None) -> str:
        return super().encode(prehash, salt, iterations)

    def verify_prehashed(self, prehash: str, encoded: str) -> bool:
        """True when ``prehash`` (as Determined sends it) matches ``encoded``."""
        decoded = self.decode(encoded)
        candidate = self._encode_prehashed(prehash, decoded["salt"], decoded["iterations"])
        return constant_time_compare(encoded, candidate)
