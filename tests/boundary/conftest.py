"""Fixtures of the attack tests: every page and list another user sees must still answer.

The attacker is alice, an ordinary account; the victims are everyone else: after each
attack ``assert_everything_answers`` signs in as staff (who sees every page) and as bob and
asserts that every page and every API list answers 200.
"""

from __future__ import annotations

import pytest

from tests.boundary.helpers import pages_of_everything
from tests.factories import client_for


@pytest.fixture
def assert_everything_answers(staff, bob):
    """Call after an attack: every page and list is 200 for staff and for bob."""

    def check():
        failures = []
        for user in (staff, bob):
            client = client_for(user)
            for url in pages_of_everything():
                if url == "/storage/" and not user.is_staff:
                    continue
                response = client.get(url)
                if response.status_code != 200:
                    failures.append((user.username, url, response.status_code))
        assert not failures, failures

    return check
