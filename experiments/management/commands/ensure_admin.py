"""``manage.py ensure_admin``: an admin account for ``make run``, never a fixed password."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the superuser 'admin' if no superuser exists. The password comes from "
        "CKPTWEB_ADMIN_PASSWORD, else one is generated and printed once."
    )

    def handle(self, *args, **options):
        users = get_user_model().objects
        existing = users.filter(is_superuser=True).order_by("id").first()
        if existing is not None:
            self.stdout.write(
                f"Log in as {existing.username!r} (password as set before; "
                "`manage.py changepassword` resets it)."
            )
            return
        password = os.environ.get("CKPTWEB_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.create_superuser("admin", email="", password=password)
        if os.environ.get("CKPTWEB_ADMIN_PASSWORD"):
            self.stdout.write("Log in as 'admin' with the password in CKPTWEB_ADMIN_PASSWORD.")
        else:
            self.stdout.write(f"Log in as 'admin' with password: {password}  (shown once)")
