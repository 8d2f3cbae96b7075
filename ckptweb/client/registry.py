"""The model registry's calls of ``ckptweb.client.Client`` (kept apart to keep it short).

``RegistryCalls`` is a mixin: it uses the client's ``request``, ``paginate`` and
``get_checkpoint``, and ``ckptweb.client.download`` (the resumable, size-checked download).
Names are quoted into the URL path; version is a number or ``latest``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from ckptweb.client.download import download_archive


class RegistryCalls:
    """Models and model versions: create, read, change, register, download by name."""

    def list_models(self, search: str | None = None, label: str | None = None) -> Iterator[dict]:
        """Every registry model (all pages), optionally filtered."""
        params = {key: value for key, value in (("search", search), ("label", label)) if value}
        return self.paginate("models", params)

    def create_model(
        self, name: str, description: str = "", labels: list[str] | None = None
    ) -> dict:
        """Create a registry model; you become its owner."""
        body = {"name": name, "description": description, "labels": labels or []}
        return self.request("POST", "models", json=body)

    def get_model(self, name: str) -> dict:
        """A model with all its versions, newest first."""
        return self.request("GET", f"models/{quote(name, safe='')}")

    def update_model(self, name: str, **changes) -> dict:
        """Change ``description`` and/or ``labels``."""
        return self.request("PATCH", f"models/{quote(name, safe='')}", json=changes)

    def delete_model(self, name: str) -> None:
        """Delete a model and its versions (the checkpoints stay)."""
        self.request("DELETE", f"models/{quote(name, safe='')}")

    def register_model_version(self, name: str, checkpoint_uuid: str, comment: str = "") -> dict:
        """Pin a COMPLETED checkpoint as the model's next version; returns the version."""
        body = {"checkpoint": str(checkpoint_uuid), "comment": comment}
        return self.request("POST", f"models/{quote(name, safe='')}/versions", json=body)

    def get_model_version(self, name: str, version: int | str = "latest") -> dict:
        """Version ``n`` (or ``latest``) of a model."""
        return self.request(
            "GET", f"models/{quote(name, safe='')}/versions/{quote(str(version), safe='')}"
        )

    def delete_model_version(self, name: str, version: int) -> None:
        """Remove a version; its checkpoint is no longer pinned by it."""
        self.request("DELETE", f"models/{quote(name, safe='')}/versions/{int(version)}")

    def download_model_version(
        self,
        name: str,
        version: int | str = "latest",
        output_dir: str | os.PathLike = ".",
        progress=None,
        retries: int = 3,
    ) -> Path:
        """Download a model version's checkpoint into ``output_dir/<uuid>/``.

        ``latest`` is resolved to a number first, so a version registered meanwhile cannot
        change what a resumed download continues. Same resume and checks as a checkpoint.
        """
        found = self.get_model_version(name, version)
        checkpoint = self.get_checkpoint(found["checkpoint"])
        path = f"models/{quote(name, safe='')}/versions/{found['version']}/download"
        return download_archive(self, checkpoint, path, output_dir, progress, retries)
