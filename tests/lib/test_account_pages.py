"""Only the account pages that can work are mounted (issue 25, item 13).

With no mail configured, ``/accounts/password_reset/`` promised an email that never came,
and submitting a known address tried to send one (an error page). Sign-in, sign-out and
password change stay.
"""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/x/y/"],
)
def test_password_reset_is_not_mounted(client, path):
    assert client.get(path).status_code == 404


def test_sign_in_and_password_change_remain(client, alice_client):
    assert client.get("/accounts/login/").status_code == 200
    assert alice_client.get("/accounts/password_change/").status_code == 200
