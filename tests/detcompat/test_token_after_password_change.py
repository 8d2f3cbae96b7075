"""A det token ends when its user's password changes (issue 25, item 13).

Tokens outlived a password change: someone who had stolen a password and logged in with
``det`` kept access after the owner changed it. A token now carries the session auth hash
it was issued under, as Django's sessions do.
"""

import pytest

from ckptweb.detcompat.auth import issue_token
from ckptweb.detcompat.models import DetToken

pytestmark = pytest.mark.django_db


def me(client, token):
    return client.get("/det-compat/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_token_works_until_the_password_changes(client, alice):
    token = issue_token(alice)
    assert me(client, token).status_code == 200
    alice.set_password("a-new-password-of-alice")
    alice.save()
    response = me(client, token)
    assert response.status_code == 401
    assert "password changed" in response.content.decode()
    assert not DetToken.objects.filter(user=alice).exists()


def test_a_new_login_after_the_change_works(client, alice):
    issue_token(alice)
    alice.set_password("a-new-password-of-alice")
    alice.save()
    assert me(client, issue_token(alice)).status_code == 200
