"""The bulk-delete confirmation's Cancel link goes back only to this site (issue 25, item 13).

It rendered the posted ``next`` as the link's ``href``, so ``javascript:…`` ran in the page
of whoever clicked Cancel.
"""

import pytest

from experiments.models import Checkpoint

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("posted", "href"),
    [
        ("javascript:alert(document.cookie)", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/experiments/1/", "/experiments/1/"),
    ],
)
def test_cancel_goes_back_only_to_this_site(alice_client, spec_example, posted, href):
    chosen = list(spec_example.checkpoints.order_by("id")[:2])
    data = {"action": "delete", "checkpoints": [str(c.uuid) for c in chosen], "next": posted}
    html = alice_client.post("/checkpoints/bulk/", data).content.decode()
    assert f'href="{href}" id="bulk-cancel"' in html
    assert posted == href or posted not in html
    assert not Checkpoint.objects.filter(state="DELETED").exists()
