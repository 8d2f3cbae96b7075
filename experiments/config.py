"""Determined-style experiment configs.

``parse_experiment_config`` turns YAML text (or an already-parsed mapping) into a
validated ``ExperimentConfig``; every rejection is a ``ConfigError`` whose ``field`` is the
dotted path of the offending key and whose message says what is wrong. Unknown keys are kept
as submitted. The ``checkpoint_storage`` section is the storage app's
(``storage.config.parse_storage_section``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ckptweb.lib.limits import MAX_CONFIG_NODES, InvalidInput, check_json
from storage.config import ConfigError, StorageSpec, load_yaml, parse_storage_section, redact


@dataclass
class ExperimentConfig:
    """A validated experiment config."""

    raw: dict
    name: str | None
    description: str
    metric: str
    smaller_is_better: bool
    hyperparameters: dict
    storage: StorageSpec

    def redacted(self) -> dict:
        return redact(self.raw)


def parse_experiment_config(config) -> ExperimentConfig:
    """Validate an experiment config given as YAML text or a mapping."""
    if isinstance(config, str):
        raw = load_yaml(config)
    elif isinstance(config, dict):
        try:
            check_json(config, "config", max_nodes=MAX_CONFIG_NODES)
        except InvalidInput as exc:
            raise ConfigError(exc.field, exc.message) from None
        raw = copy.deepcopy(config)
    elif config is None:
        raw = {}
    else:
        raise ConfigError("config", "config must be YAML text or a JSON object.")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError("name", "name must be a string.")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise ConfigError("description", "description must be a string.")
    searcher = raw.get("searcher")
    if not isinstance(searcher, dict):
        raise ConfigError("searcher", "searcher must be a mapping with a metric.")
    metric = searcher.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        raise ConfigError("searcher.metric", "searcher.metric is required (the metric's name).")
    smaller = searcher.get("smaller_is_better", True)
    if not isinstance(smaller, bool):
        raise ConfigError(
            "searcher.smaller_is_better", "searcher.smaller_is_better must be true or false."
        )
    hparams = raw.get("hyperparameters") or {}
    if not isinstance(hparams, dict):
        raise ConfigError("hyperparameters", "hyperparameters must be a mapping.")
    storage = parse_storage_section(raw.get("checkpoint_storage"))
    return ExperimentConfig(
        raw=raw,
        name=name.strip() if isinstance(name, str) else None,
        description=description,
        metric=metric.strip(),
        smaller_is_better=smaller,
        hyperparameters=hparams,
        storage=storage,
    )
