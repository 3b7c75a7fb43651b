"""What registered-model names, aliases, stages and ``models:/`` URIs may look like."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RegistryError

STAGES = ("None", "Staging", "Production", "Archived")
LATEST = "latest"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")  # \Z: "$" also matches before a final newline
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}\Z")
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/@]+)|@(?P<alias>[^/@]+))/?$")


def check_name(name: str) -> str:
    """A model name: letters, digits, ``_ . -``, starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"invalid model name {name!r}: use letters, digits, '_', '.', '-' (at most 128)")
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
    if ref.isdigit():
        return ModelReference(name, version=int(ref))
    if ref.lower() == LATEST:
        return ModelReference(name)
    return ModelReference(name, stage=canonical_stage(ref))
