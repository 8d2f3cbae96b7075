"""``manage.py rebuild_summaries [EXPERIMENT_ID ...]``: recompute experiment summaries.

``experiments.summary.refresh`` per experiment (all of them without arguments): the repair
when a summary drifted, e.g. after rows were changed by hand in the database.
"""

from django.core.management.base import BaseCommand

from experiments import summary
from experiments.models import Experiment


class Command(BaseCommand):
    help = "Recompute the per-experiment checkpoint summaries from the checkpoints."

    def add_arguments(self, parser):
        parser.add_argument("experiment_ids", nargs="*", type=int)

    def handle(self, *args, experiment_ids, **options):
        experiments = Experiment.objects.order_by("pk")
        if experiment_ids:
            experiments = experiments.filter(pk__in=experiment_ids)
        count = 0
        for experiment in experiments.iterator():
            summary.refresh(experiment)
            count += 1
        self.stdout.write(f"Rebuilt {count} experiment summar{'y' if count == 1 else 'ies'}.")
