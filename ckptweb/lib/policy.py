"""The GC policy: the three ``save_*`` numbers (docs/architecture.md "Retention") as a value.

Every layer uses this one type: ``StorageConfig.default_policy()`` and
``Experiment.gc_policy`` return it, the forms, the API and the Determined layer parse user
input into it with ``Policy.from_mapping`` (a bad value is an ``InvalidPolicy`` naming the
field, which the API answers with a 400), GC runs record ``as_dict()``, and pages print
``str(policy)`` ("0/1/1"). Pure Python: the storage layer below ``experiments`` imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ckptweb.lib.limits import InvalidInput, printable

#: The field names, in the order the text form "a/b/c" lists them.
POLICY_FIELDS = ("save_experiment_best", "save_trial_best", "save_trial_latest")
#: Largest value of a field (the database column is a 32-bit integer).
MAX_POLICY_VALUE = 2**31 - 1


class InvalidPolicy(InvalidInput):
    """A GC policy value that is not a non-negative integer; ``field`` names it."""


def _not_a_count(field: str, value) -> InvalidPolicy:
    shown = printable(value) if isinstance(value, str) else value
    return InvalidPolicy(field, f"{field} must be a non-negative integer, not {shown!r}.")


def parse_policy_value(field: str, value) -> int:
    """One ``save_*`` value (int or decimal text) as an int in 0..2**31-1, else InvalidPolicy."""
    if isinstance(value, bool):
        raise _not_a_count(field, value)
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise _not_a_count(field, value)
        if len(text) > 10:
            raise InvalidPolicy(field, f"{field} is too large (at most {MAX_POLICY_VALUE}).")
        value = int(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise _not_a_count(field, value)
    if value > MAX_POLICY_VALUE:
        raise InvalidPolicy(field, f"{field} is too large (at most {MAX_POLICY_VALUE}).")
    return value


@dataclass(frozen=True)
class Policy:
    """The three ``save_*`` numbers of a GC policy; the defaults are the spec's 0/1/1.

    Constructing one validates it: every value is an int in 0..2**31-1 (InvalidPolicy).
    """

    save_experiment_best: int = 0
    save_trial_best: int = 1
    save_trial_latest: int = 1

    def __post_init__(self):
        for field in POLICY_FIELDS:
            value = getattr(self, field)
            if not isinstance(value, int):  # text is parsed by from_mapping, not here
                raise InvalidPolicy(
                    field, f"{field} must be a non-negative integer, not {value!r}."
                )
            parse_policy_value(field, value)  # bool, negative or too large

    @classmethod
    def from_mapping(cls, values: Mapping, fallback: Policy | Mapping | None = None) -> Policy:
        """A policy from a mapping of ints or decimal strings (a form, a query string, JSON).

        A missing, None or empty value comes from ``fallback`` (a Policy or a mapping),
        else from the 0/1/1 default. Raises InvalidPolicy naming the first bad field.
        """
        if isinstance(fallback, Policy):
            fallback = fallback.as_dict()
        fallback = fallback or {}
        numbers = {}
        for field in POLICY_FIELDS:
            value = values.get(field)
            if value is None or value == "":
                value = fallback.get(field, getattr(DEFAULT_POLICY, field))
            numbers[field] = parse_policy_value(field, value)
        return cls(**numbers)

    def as_dict(self) -> dict[str, int]:
        """``{"save_experiment_best": …, "save_trial_best": …, "save_trial_latest": …}``."""
        return {field: getattr(self, field) for field in POLICY_FIELDS}

    @property
    def text(self) -> str:
        """The short form pages and messages show: ``"0/1/1"``."""
        return "/".join(str(getattr(self, field)) for field in POLICY_FIELDS)

    def __str__(self) -> str:
        return self.text


#: What an experiment applies when neither it nor its storage sets a value.
DEFAULT_POLICY = Policy()
#: The policy of an experiment being deleted: nothing is kept (but pinned checkpoints).
DELETE_EVERYTHING = Policy(save_experiment_best=0, save_trial_best=0, save_trial_latest=0)
