"""``manage.py load_demo``: the spec's example and two realistic experiments (idempotent)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from experiments.demo import load_demo


class Command(BaseCommand):
    help = "Load demo experiments (spec-example and two realistic ones); safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument("--owner", default=None, help="Username owning the demo data.")

    def handle(self, *args, owner=None, **options):
        users = get_user_model().objects
        if owner:
            user = users.filter(username=owner).first()
            if user is None:
                raise CommandError(f"--owner: no user named {owner!r}")
        else:
            user = users.filter(is_superuser=True).order_by("id").first()
            if user is None:
                user, _ = users.get_or_create(username="demo")
        with transaction.atomic():
            created = load_demo(user)
        if created:
            self.stdout.write(f"Created demo experiments: {', '.join(created)} (owner {user}).")
        else:
            self.stdout.write("Demo experiments already present; nothing to do.")
