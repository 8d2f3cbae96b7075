"""``manage.py create_token USER [--name N] [--days D]``: an API token for an administrator to
hand out (users make their own on the Tokens page or with ``ckpt login``)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ckptweb.accounts.services import create_token


class Command(BaseCommand):
    help = "Create a named API token for USER and print its key (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="created by an administrator")
        parser.add_argument("--days", type=int, help="expire after this many days (default never)")

    def handle(self, *args, username, name, days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        _token, key = create_token(user, name, expires_at=expires_at)
        self.stdout.write(key)
