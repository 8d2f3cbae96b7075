"""Determined-style experiment configs and the master config's ``checkpoint_storage``.

``parse_experiment_config`` turns YAML text (or an already-parsed mapping) into a
validated ``ExperimentConfig``; every rejection is a ``ConfigError`` whose ``field`` is the
dotted path of the offending key (``checkpoint_storage.bucket``) and whose message says
what is wrong. Unknown keys are kept as submitted. Storage secrets are taken out of the
stored copy (``redact``) and live only in the StorageConfig.
"""

from __future__ import annotations

import copy
import hashlib
import json
import posixpath
from dataclasses import dataclass, field

import yaml
from django.core.exceptions import ValidationError

from ckptweb.lib import safe_yaml
from ckptweb.lib.limits import MAX_CONFIG_NODES, InvalidInput, check_json
from ckptweb.lib.policy import POLICY_FIELDS, InvalidPolicy, parse_policy_value
from storage.backends import SECRET_FIELDS, STORAGE_FIELDS, URL_FIELDS
from storage.choices import StorageType
from storage.models import REDACTED, StorageConfig, redact_url
from storage.models import credential_fields as stored_credential_fields


class ConfigError(InvalidInput):
    """An invalid config; ``field`` is the dotted key path, the message says why."""


@dataclass
class StorageSpec:
    """A validated ``checkpoint_storage`` section: storage type and fields, and save_*."""

    type: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    policy: dict[str, int] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A short stable digest of type and fields, to reuse identical StorageConfigs."""
        blob = json.dumps({"type": self.type, **self.fields}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


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


def load_yaml(text: str, field: str = "config") -> dict:
    """Parse YAML text into a mapping within ``ckptweb.lib.safe_yaml``'s limits.

    Syntax errors name the line; limits (size, nodes, depth, tags, duplicate keys, finite
    numbers) name the key.
    """
    try:
        data = safe_yaml.load(text, field)
    except InvalidInput as exc:
        raise ConfigError(exc.field, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(field, f"YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(field, f"YAML syntax error: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(field, "must be a YAML mapping (key: value pairs).")
    return data


def redact(config: dict) -> dict:
    """A deep copy of ``config`` with storage secrets replaced by ``********``."""
    clean = copy.deepcopy(config)
    storage = clean.get("checkpoint_storage")
    if isinstance(storage, dict):
        for key in SECRET_FIELDS:
            if storage.get(key):
                storage[key] = REDACTED
        for key in URL_FIELDS:
            if isinstance(storage.get(key), str):
                storage[key] = redact_url(storage[key])
    return clean


def credential_fields(spec: StorageSpec) -> list[str]:
    """The fields of ``spec`` that carry credentials (``storage.models.credential_fields``)."""
    return stored_credential_fields(spec.fields)


def _string(section: dict, key: str, path: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(path, f"{path} must be a string.")
    return str(value).strip()


def parse_storage_section(section, path: str = "checkpoint_storage") -> StorageSpec:
    """Validate a ``checkpoint_storage`` mapping (experiment or master config)."""
    if section is None:
        return StorageSpec()
    if not isinstance(section, dict):
        raise ConfigError(path, f"{path} must be a mapping.")
    spec = StorageSpec()
    for key in POLICY_FIELDS:
        if key in section and section[key] is not None:
            try:
                spec.policy[key] = parse_policy_value(key, section[key])
            except InvalidPolicy:
                raise ConfigError(
                    f"{path}.{key}",
                    f"{path}.{key} must be a non-negative integer, not {section[key]!r}.",
                ) from None
    storage_type = section.get("type")
    if storage_type is None:
        present = [key for key in STORAGE_FIELDS if section.get(key)]
        if present:
            raise ConfigError(f"{path}.type", f"{path}.type is required with {present[0]}.")
        return spec
    try:
        storage_type = StorageType(storage_type)
    except ValueError:
        choices = ", ".join(StorageType.values)
        raise ConfigError(
            f"{path}.type", f"{path}.type {storage_type!r} is unknown; use one of {choices}."
        ) from None
    spec.type = storage_type.value
    for key in STORAGE_FIELDS:
        value = _string(section, key, f"{path}.{key}")
        if value:
            spec.fields[key] = value
    _check_storage_config(spec, path)
    if "host_path" in spec.fields:
        spec.fields["host_path"] = posixpath.normpath(spec.fields["host_path"])
    return spec


def _check_storage_config(spec: StorageSpec, path: str) -> None:
    """Validate the section as the StorageConfig it would become (unsaved, ``full_clean``).

    The first problem is a ConfigError naming ``<path>.<field>``.
    """
    candidate = StorageConfig(name="candidate", type=spec.type, **spec.fields)
    try:
        candidate.full_clean(exclude=["name"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        key, messages = next(iter(exc.message_dict.items()))
        name = f"{path}.{key}" if key != "__all__" else path
        message = messages[0]
        if message.startswith(f"{key} "):  # the model's rules name the field first
            raise ConfigError(name, f"{path}.{message}") from None
        raise ConfigError(name, f"{name}: {message}") from None


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


def parse_master_config(text: str) -> StorageSpec:
    """The master config file: its ``checkpoint_storage`` section must name a type."""
    data = load_yaml(text, field="CKPTWEB_CONFIG")
    spec = parse_storage_section(data.get("checkpoint_storage"))
    if spec.type is None:
        raise ConfigError("checkpoint_storage.type", "checkpoint_storage.type is required.")
    return spec
