"""The Determined hasher with few iterations, so tests can create users quickly."""

from ckptweb.detcompat.hashers import DeterminedPBKDF2PasswordHasher


class FastDeterminedHasher(DeterminedPBKDF2PasswordHasher):
    iterations = 1000
