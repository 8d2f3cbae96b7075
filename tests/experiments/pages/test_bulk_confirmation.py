"""The bulk-delete confirmation's Cancel link goes back only to this site (issue 25, item 13).

It rendered the posted ``next`` as the link's ``href``, so ``javascript:…`` ran in the page
of whoever clicked Cancel.
"""

import pytest

from experiments import registry
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


def test_a_registered_checkpoint_is_not_counted_and_named_as_registered(
    alice, alice_client, spec_example
):

    chosen = list(spec_example.checkpoints.filter(state="COMPLETED").order_by("id")[:2])
    model = registry.create_model(alice, "served")
    registry.register_version(model, chosen[0], alice)
    data = {"action": "delete", "checkpoints": [str(c.uuid) for c in chosen], "next": "/"}
    html = alice_client.post("/checkpoints/bulk/", data).content.decode()
    assert "Delete 1 checkpoint" in html  # the registered one is not counted
    assert "served v1" in html
    data["confirm"] = "1"
    page = alice_client.post("/checkpoints/bulk/", data, follow=True).content.decode()
    assert "registered as served v1" in page
    assert "is protected" not in page
    chosen[0].refresh_from_db()
    assert chosen[0].state == "COMPLETED"
