"""Errors raised while reading, resolving or loading a model directory."""
from __future__ import annotations

from collections.abc import Iterable


class ModelLoadError(Exception):
    """A model could not be loaded; the message says what failed and in which file."""


class UntrustedTypesError(ModelLoadError):
    """A skops file contains types that the model's ``skops_trusted_types`` does not list."""

    def __init__(self, path: object, types: Iterable[str]) -> None:
        self.types = sorted(types)
        super().__init__(
            f"{path} contains types that are not trusted: {', '.join(self.types)}. "
            "List them under skops_trusted_types in the sklearn section of MLmodel to load it."
        )


class FlavorPluginError(ModelLoadError):
    """A flavor plug-in registered under the ``scoring_server.flavors`` entry point is broken."""
