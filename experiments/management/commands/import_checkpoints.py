"""``manage.py import_checkpoints --storage NAME --experiment ID``: register existing dirs."""

from django.core.management.base import BaseCommand, CommandError

from experiments.imports import import_checkpoints
from experiments.models import Experiment, Trial
from storage.backends.base import StorageError
from storage.models import StorageConfig


class Command(BaseCommand):
    """Scan a storage for ``<uuid>/metadata.json`` directories and register them.

    Idempotent: directories already registered are reported as skipped.
    """

    help = "Register checkpoint directories found on a storage as checkpoints of an experiment."

    def add_arguments(self, parser):
        parser.add_argument("--storage", required=True, help="StorageConfig name")
        parser.add_argument("--experiment", required=True, type=int, help="Experiment id")
        parser.add_argument(
            "--trial", type=int, help="Trial for checkpoints whose metadata has no trial_id"
        )

    def handle(self, *args, storage, experiment, trial=None, **options):
        config = self._get(StorageConfig, f"storage {storage!r}", name=storage)
        target = self._get(Experiment, f"experiment {experiment}", pk=experiment)
        default_trial = None
        if trial is not None:
            default_trial = self._get(
                Trial, f"trial {trial} of experiment {experiment}", pk=trial, experiment=target
            )
        try:
            report = import_checkpoints(config, target, default_trial)
        except (ValueError, StorageError) as exc:
            raise CommandError(config.scrub(str(exc))) from None
        for checkpoint_uuid in report.imported:
            self.stdout.write(f"imported {checkpoint_uuid}")
        for directory, reason in report.skipped:
            self.stdout.write(f"skipped {directory}: {reason}")
        self.stdout.write(
            self.style.SUCCESS(f"{len(report.imported)} imported, {len(report.skipped)} skipped")
        )

    @staticmethod
    def _get(model, label: str, **lookup):
        try:
            return model.objects.get(**lookup)
        except model.DoesNotExist:
            raise CommandError(f"No {label}.") from None
