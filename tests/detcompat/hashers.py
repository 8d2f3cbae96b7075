"""The Determined hasher with few iterations, so tests can create users quickly."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher

from ckptweb.detcompat.hashers import DeterminedPBKDF2PasswordHasher


class FastDeterminedHasher(DeterminedPBKDF2PasswordHasher):
    iterations = 1000


class FastPBKDF2Hasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 (same algorithm name), cheap: the hash users had before det-compat."""

    iterations = 1000
