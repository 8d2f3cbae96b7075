"""``manage.py apply_master_config``: make CKPTWEB_CONFIG's checkpoint_storage the default."""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from storage.config import ConfigError, parse_master_config
from storage.services import apply_master_config, default_storage


class Command(BaseCommand):
    help = (
        "Apply the master config file (CKPTWEB_CONFIG or --config): its checkpoint_storage "
        "becomes the default storage with its default save_* policy. Without a file, make "
        "sure a default shared_fs storage exists under the data dir."
    )

    def add_arguments(self, parser):
        parser.add_argument("--config", default=None, help="Path of the master config YAML.")

    def handle(self, *args, config=None, **options):
        path = config or settings.CKPTWEB_CONFIG
        if not path:
            storage = default_storage()
            self.stdout.write(f"No CKPTWEB_CONFIG; default storage is {storage.location}.")
            return
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"CKPTWEB_CONFIG: cannot read {path}: {exc.strerror}") from None
        try:
            spec = parse_master_config(text)
            storage = apply_master_config(spec)
        except ConfigError as exc:
            raise CommandError(f"{path}: {exc.message}") from None
        except ValidationError as exc:
            raise CommandError(f"{path}: {'; '.join(exc.messages)}") from None
        self.stdout.write(
            f"Default storage: {storage.type} at {storage.location}; default policy "
            f"{storage.default_policy()}."
        )
