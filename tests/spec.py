"""The spec's GC example table, once for every test that checks it.

Policies are (save_experiment_best, save_trial_best, save_trial_latest); the saved checkpoints
are in the spec's numbering (1..10: trial 1 at steps 100..500, then trial 2), descending.
The ">= 5" and ">= 3" rows are checked at the bound and beyond it.
"""

SPEC_POLICIES = [
    ((0, 0, 0), []),
    ((2, 0, 0), [8, 7]),
    ((5, 0, 0), [8, 7, 5, 4, 3]),
    ((9, 0, 0), [8, 7, 5, 4, 3]),
    ((0, 1, 0), [7, 5]),
    ((0, 3, 0), [8, 7, 5, 4, 3]),
    ((0, 7, 0), [8, 7, 5, 4, 3]),
    ((0, 0, 1), [10, 5]),
    ((0, 0, 3), [10, 9, 8, 5, 4, 3]),
    ((2, 1, 0), [8, 7, 5]),
    ((2, 0, 1), [10, 8, 7, 5]),
    ((0, 1, 1), [10, 7, 5]),
    ((2, 1, 1), [10, 8, 7, 5]),
]


def saved_text(saved: list[int]) -> str:
    """The saved ids as the GC page's ``data-retained-ids`` spells them: ``"8,7"``."""
    return ",".join(str(number) for number in saved)


#: The same rows as comma-separated text, for the pages.
SPEC_POLICIES_TEXT = [(policy, saved_text(saved)) for policy, saved in SPEC_POLICIES]
