"""Errors raised while reading, resolving or loading a model directory."""
from __future__ import annotations

from collections.abc import Iterable


class ModelLoadError(Exception):
    """A model could not be loaded; the message says what failed and in which file.

    ``public_message``, when set, says the same without file paths or other details of the
    server, for clients who may not see those (a server logs the full message).
    """

    public_message: str | None = None


class UntrustedTypesError(ModelLoadError):
    """A skops file contains types that the loading policy does not trust, or its ``MLmodel`` asks
    for trust in types the loading policy does not grant."""

    def __init__(self, path: object, types: Iterable[str], listed_in_mlmodel: bool = False) -> None:
        self.types = sorted(types)
        where = ("its MLmodel lists them under skops_trusted_types, but a model cannot trust types for itself"
                 if listed_in_mlmodel else "skops does not trust them by default")
        super().__init__(
            f"{path} needs types that are not trusted: {', '.join(self.types)} ({where}). "
            "If you trust them, grant them to the server with --skops-trusted-types "
            f"{','.join(self.types)} (configuration key skops_trusted_types)."
        )
        self.public_message = "the model's skops file needs types the server does not trust"


class UntrustedSkopsTypesError(ValueError):
    """``save_model(..., serialization_format="skops")`` for an estimator made of types skops does
    not trust by default (trees, forests, boosting): refused at save time, as MLflow does."""

    def __init__(self, types: Iterable[str]) -> None:
        self.types = sorted(types)
        listed = ", ".join(repr(t) for t in self.types)
        super().__init__(
            f"the sklearn model references types skops does not trust by default: {listed}. If you are "
            f"sure loading these types is safe, pass skops_trusted_types=[{listed}] to save_model (and "
            f"grant them to the server with --skops-trusted-types {','.join(self.types)}), or save it with "
            "serialization_format='cloudpickle'."
        )


class FlavorPluginError(ModelLoadError):
    """A flavor plug-in registered under the ``scoring_server.flavors`` entry point is broken."""
