"""The experiments app's models, one module per feature (docs/architecture.md, "Models")."""

from experiments.models.checkpoints import CANDIDATE, CANDIDATE_WITH_METRIC, Checkpoint
from experiments.models.experiments import Experiment, Trial, Validation
from experiments.models.gc import GCRun
from experiments.models.logs import TrialLog
from experiments.models.metrics import TrialMetrics
from experiments.models.registry import Model, ModelVersion, RetiredModelName
from experiments.models.summary import ExperimentSummary

__all__ = [
    "CANDIDATE",
    "CANDIDATE_WITH_METRIC",
    "Checkpoint",
    "Experiment",
    "ExperimentSummary",
    "GCRun",
    "Model",
    "ModelVersion",
    "RetiredModelName",
    "Trial",
    "TrialLog",
    "TrialMetrics",
    "Validation",
]
