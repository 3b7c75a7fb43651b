"""What registered-model names, aliases, stages and ``models:/`` URIs may look like."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import MODEL_NAME_MAX, MODEL_NAME_RULE, is_model_name
from .errors import RegistryError

STAGES = ("None", "Staging", "Production", "Archived")
LATEST = "latest"

_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}\Z")  # \Z: "$" also matches before a final newline
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/@]+)|@(?P<alias>[^/@]+))/?\Z")


def check_name(name: str) -> str:
    """A model name, by the server's one rule (``scoring_server.config.MODEL_NAME_PATTERN``): what a
    models file or the admin API may serve is what the registry may register, and the reverse."""
    if not is_model_name(name):
        shown = repr(name) if len(repr(name)) <= MODEL_NAME_MAX + 2 else repr(name)[:MODEL_NAME_MAX] + "...'"
        raise RegistryError(f"invalid model name {shown}: use {MODEL_NAME_RULE}")
    return name


def check_alias(alias: str) -> str:
    """An alias: an identifier that cannot be mistaken for a version (``v3``) or ``latest``."""
    if not _ALIAS.match(alias) or alias.lower() == LATEST or re.fullmatch(r"[vV]\d+", alias):
        raise RegistryError(f"invalid alias {alias!r}: an identifier, not 'latest' nor like a version (v1)")
    return alias


def canonical_stage(stage: str) -> str:
    """``production`` → ``Production``; unknown stages are refused, naming the valid ones."""
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise RegistryError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")


@dataclass(frozen=True)
class ModelReference:
    """What a ``models:/`` URI points at: a version, a stage, an alias, or the latest version."""

    name: str
    version: int | None = None
    stage: str | None = None
    alias: str | None = None

    @property
    def moving(self) -> bool:
        """Whether the reference can point at another version later (all but a fixed version)."""
        return self.version is None


def parse_models_uri(uri: str) -> ModelReference:
    """``models:/NAME/VERSION``, ``models:/NAME/STAGE``, ``models:/NAME/latest`` or ``models:/NAME@ALIAS``."""
    match = _URI.match(uri)
    if match is None:
        raise RegistryError(
            f"invalid model registry URI {uri!r}: use models:/NAME/VERSION, models:/NAME/STAGE, "
            "models:/NAME/latest or models:/NAME@ALIAS"
        )
    name, ref, alias = check_name(match["name"]), match["ref"], match["alias"]
    if alias is not None:
        return ModelReference(name, alias=check_alias(alias))
    if ref.isascii() and ref.isdigit():
        return ModelReference(name, version=int(ref))
    if ref.lower() == LATEST:
        return ModelReference(name)
    return ModelReference(name, stage=canonical_stage(ref))
