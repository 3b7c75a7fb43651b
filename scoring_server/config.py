"""Server configuration: defaults < YAML file (``--config``) < ``SCORING_SERVER_*`` env < CLI flags.

Every layer is validated by one marshmallow schema, so a bad value is reported with the
key that holds it. ``conf/default.yaml`` documents the same defaults.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields as dataclass_fields
from pathlib import Path
from typing import Any, Mapping

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

ENV_PREFIX = "SCORING_SERVER_"


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ServerConfig:
    """Validated settings of one server process."""

    model_uri: str | None
    host: str
    port: int
    workers: int
    timeout: int
    expose_stack_traces: bool
    max_request_bytes: int
    log_level: str
    check_serving_input: bool
    threads: int
    batching: str
    max_batch_size: int
    max_batch_time_ms: float
    protocol: str
    registry_uri: str | None
    poll_interval_seconds: float
    models_file: str | None
    model_root: str | None
    registry_models: bool
    registry_alias: str | None
    default_model: str | None
    model_param: str
    max_loaded_models: int
    max_memory_mb: float | None
    admin_api: bool

    @property
    def multi_model(self) -> bool:
        """Serving a set of models (``--models``, ``--model-root`` or ``--registry-models``)."""
        return bool(self.models_file or self.model_root or self.registry_models)


class ServerConfigSchema(Schema):
    """The configuration keys, their types and defaults."""

    class Meta:
        unknown = RAISE

    model_uri = fields.String(load_default=None, allow_none=True)
    host = fields.String(load_default="127.0.0.1")
    port = fields.Integer(load_default=5000, validate=validate.Range(min=0, max=65535))
    workers = fields.Integer(load_default=1, validate=validate.Range(min=1))
    timeout = fields.Integer(load_default=60, validate=validate.Range(min=1))
    expose_stack_traces = fields.Boolean(load_default=False)
    max_request_bytes = fields.Integer(load_default=100 * 1024 * 1024, validate=validate.Range(min=1))
    log_level = fields.String(
        load_default="info", validate=validate.OneOf(["debug", "info", "warning", "error", "critical"])
    )
    check_serving_input = fields.Boolean(load_default=False)
    threads = fields.Integer(load_default=1, validate=validate.Range(min=1))
    batching = fields.String(load_default="auto", validate=validate.OneOf(["auto", "on", "off"]))
    max_batch_size = fields.Integer(load_default=64, validate=validate.Range(min=1))
    max_batch_time_ms = fields.Float(load_default=5.0, validate=validate.Range(min=0))
    protocol = fields.String(load_default="mlflow2", validate=validate.OneOf(["mlflow2", "mlflow1", "auto"]))
    registry_uri = fields.String(load_default=None, allow_none=True)
    poll_interval_seconds = fields.Float(load_default=5.0, validate=validate.Range(min=0.05))
    models_file = fields.String(load_default=None, allow_none=True)
    model_root = fields.String(load_default=None, allow_none=True)
    registry_models = fields.Boolean(load_default=False)
    registry_alias = fields.String(load_default=None, allow_none=True)
    default_model = fields.String(load_default=None, allow_none=True)
    model_param = fields.String(load_default="model")
    max_loaded_models = fields.Integer(load_default=10, validate=validate.Range(min=1))
    max_memory_mb = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=1))
    admin_api = fields.Boolean(load_default=False)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> ServerConfig:
    """Merge the layers and validate the result; ``None`` overrides mean "not given"."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_validated(_read_yaml(path), f"config file {path}"))
    values.update(_validated(_from_env(os.environ if env is None else env), "environment"))
    values.update(_validated({k: v for k, v in (overrides or {}).items() if v is not None}, "options"))
    return ServerConfig(**_validated(values, "configuration", partial=False))


def default_values() -> dict[str, Any]:
    """Every key with its default, as ``conf/default.yaml`` lists them."""
    return ServerConfigSchema().load({})


def _read_yaml(path: str | Path) -> dict:
    try:
        content = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return content


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    names = [f.name for f in dataclass_fields(ServerConfig)]
    return {name: env[ENV_PREFIX + name.upper()] for name in names if ENV_PREFIX + name.upper() in env}


def _validated(values: dict, source: str, partial: bool = True) -> dict:
    """Validate one layer; only the final merge (``partial=False``) fills in defaults."""
    try:
        loaded = ServerConfigSchema().load(values, partial=partial)
    except ValidationError as exc:
        problems = "; ".join(f"{key}: {' '.join(map(str, msgs))}" for key, msgs in exc.messages.items())
        raise ConfigError(f"invalid {source}: {problems}") from None
    return loaded
