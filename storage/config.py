"""The ``checkpoint_storage`` section of a config, and the master config file.

``parse_storage_section`` validates a section (an experiment config's or the master
config's) into a ``StorageSpec``; every rejection is a ``ConfigError`` whose ``field`` is the
dotted path of the offending key (``checkpoint_storage.bucket``) and whose message says
what is wrong. Storage secrets are taken out of a stored copy (``redact``) and live only in
the StorageConfig. ``experiments.config`` parses the rest of an experiment config.
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
from ckptweb.lib.limits import InvalidInput
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


def parse_master_config(text: str) -> StorageSpec:
    """The master config file: its ``checkpoint_storage`` section must name a type."""
    data = load_yaml(text, field="CKPTWEB_CONFIG")
    spec = parse_storage_section(data.get("checkpoint_storage"))
    if spec.type is None:
        raise ConfigError("checkpoint_storage.type", "checkpoint_storage.type is required.")
    return spec
