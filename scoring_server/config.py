"""Server configuration: defaults < YAML file (``--config``) < ``SCORING_SERVER_*`` env < CLI flags.

One marshmallow schema defines every key: its type, default, validation, help text and ``serve``
flag. The ``serve`` options, ``conf/default.yaml`` and the key table of ``docs/configuration.md``
are generated from it (``scripts/gen_config_docs.py``), so none of them can miss a key. Every
layer is validated by that schema, so a bad value is reported with the key that holds it; the
models of a models file (and of the admin API) are validated here too.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

ENV_PREFIX = "SCORING_SERVER_"
#: The YAML configuration file of a process configured by its environment (``serve --config`` too).
CONFIG_ENV = ENV_PREFIX + "CONFIG"
#: Wire-protocol generations a server, or one model of it, can answer in.
PROTOCOLS = ("mlflow2", "mlflow1", "auto")
#: Any of these serves many models, which excludes serving one with ``model_uri``.
MULTI_MODEL_KEYS = ("models_file", "model_root", "registry_models")
#: The one rule for model names: served names (models files, the admin API, folders of a model
#: root) and registered names alike, since each can become the other and all end up in URLs, log
#: lines and registry paths. ``\Z``, not ``$``: "$" also matches before a trailing newline.
MODEL_NAME_MAX = 200
MODEL_NAME_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MODEL_NAME_MAX - 1}}}\Z")
MODEL_NAME_RULE = f"letters, digits, '.', '_' and '-', starting with a letter or digit, at most {MODEL_NAME_MAX}"


def is_model_name(name: Any) -> bool:
    """Whether ``name`` follows the one model-name rule (:data:`MODEL_NAME_PATTERN`)."""
    return isinstance(name, str) and MODEL_NAME_PATTERN.match(name) is not None


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
    request_timeout: float
    drain_seconds: int
    expose_stack_traces: bool
    max_request_bytes: int
    max_rows: int
    max_cells: int
    max_json_depth: int
    log_level: str
    check_serving_input: bool
    threads: int
    worker_class: str
    header_timeout: float
    body_timeout: float
    batching: str
    max_batch_size: int
    max_batch_time_ms: float
    protocol: str
    registry_uri: str | None
    artifact_root: str | None
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
    allowed_model_roots: list[str]
    api_keys_file: str | None
    cors_origins: list[str]
    certfile: str | None
    keyfile: str | None
    model_formats: list[str]
    skops_trusted_types: list[str]
    device: str
    metrics: bool
    metrics_port: int | None
    access_log: str
    latency_slo_ms: float | None
    max_model_age_days: float | None
    drift_sample_fraction: float
    drift_window_seconds: float
    drift_min_rows: int
    drift_warn_psi: float
    drift_alert_psi: float
    capture_dir: str | None
    capture_fraction: float
    capture_format: str
    capture_max_file_mb: float

    @property
    def multi_model(self) -> bool:
        """Serving a set of models (``--models``, ``--model-root`` or ``--registry-models``)."""
        return any(getattr(self, key) for key in MULTI_MODEL_KEYS)


def _doc(help_text: str, *flags: str, section: str | None = None) -> dict[str, Any]:
    """A key's ``metadata``: what the CLI, the docs and ``conf/default.yaml`` say about it."""
    return {"help": help_text, "flags": flags, "section": section}


def _existing(check: Callable[[Path], bool], what: str) -> Callable[[str], None]:
    """A validator refusing a path that is not an existing file (``Path.is_file``) or directory."""
    def validator(value: str) -> None:
        if not check(Path(value)):
            raise ValidationError(f"no such {what}: {value}")
    return validator


class _Origins(fields.List):
    """Web origins (``scheme://host[:port]``), as a YAML list or one comma-separated string (a
    variable, a flag); lower-cased and without a trailing ``/``, as browsers send ``Origin``."""

    _ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(\[[0-9a-f:.]+\]|[^\s/?#@:\[\]]+)(:[0-9]{1,5})?\Z")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.String(), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        origins = [origin.strip().lower().removesuffix("/") if isinstance(origin, str) else origin
                   for origin in (value if isinstance(value, list) else [value])]
        origins = super()._deserialize(origins, attr, data, **kwargs)
        for origin in origins:
            if origin in ("*", "null"):
                raise ValidationError(f"{origin!r} is not allowed: list each origin (scheme://host[:port])")
            if not self._ORIGIN.match(origin):
                raise ValidationError(f"{origin!r} is not an origin: use scheme://host[:port], no path")
        return origins


class _Names(fields.List):
    """A list of names, as a YAML list or one comma-separated string (a variable, a flag); each
    stripped, empty ones dropped, duplicates kept once; ``choices`` or ``pattern`` check each."""

    def __init__(self, choices: tuple[str, ...] | None = None, pattern: re.Pattern | None = None,
                 what: str = "value", **kwargs: Any) -> None:
        super().__init__(fields.String(), **kwargs)
        self.item_choices, self.pattern, self.what = choices, pattern, what

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            value = value.split(",")
        items = super()._deserialize(value if isinstance(value, list) else [value], attr, data, **kwargs)
        names = list(dict.fromkeys(item.strip() for item in items if item.strip()))
        for name in names:
            if self.item_choices is not None and name not in self.item_choices:
                raise ValidationError(f"unknown {self.what} {name!r}: use {', '.join(self.item_choices)}")
            if self.pattern is not None and not self.pattern.match(name):
                raise ValidationError(f"{name!r} is not a {self.what}")
        return names


#: Model file formats a server may load (flavors.policy.FORMATS; not imported, to keep this module light).
MODEL_FORMATS = ("skops", "onnx", "xgboost", "lightgbm", "torch-export", "keras", "cloudpickle", "pickle", "code")
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z")


class ServerConfigSchema(Schema):
    """The configuration keys: type, default, validation, and (in ``metadata``) help and ``serve`` flag."""

    class Meta:
        unknown = RAISE

    model_uri = fields.String(load_default=None, allow_none=True, metadata=_doc(
        "Model to serve: a directory, file:// URI or models:/ registry URI.", "-m", "--model-uri"))
    host = fields.String(load_default="127.0.0.1", metadata=_doc("Address to bind.", "-h", "--host"))
    port = fields.Integer(load_default=5000, validate=validate.Range(min=0, max=65535),
                          metadata=_doc("Port to bind.", "-p", "--port"))
    workers = fields.Integer(load_default=1, validate=validate.Range(min=1), metadata=_doc(
        "gunicorn worker processes; each keeps the model in memory (shared with the master until written).",
        "-w", "--workers"))
    timeout = fields.Integer(load_default=60, validate=validate.Range(min=1), metadata=_doc(
        "Seconds a worker may stay silent (e.g. in one predict call) before gunicorn restarts it; at least "
        "request_timeout + 5, so that a request past its deadline is answered (JSON 504) first.",
        "-t", "--timeout"))
    request_timeout = fields.Float(load_default=60.0, validate=validate.Range(min=0.01), metadata=_doc(
        "Seconds a request may take once it has arrived (waiting for a thread included; MLflow's "
        "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT): later, its client gets a JSON 504 DEADLINE_EXCEEDED and the "
        "worker keeps serving (docs/security.md#deadlines).", "--request-timeout"))
    drain_seconds = fields.Integer(load_default=30, validate=validate.Range(min=0), metadata=_doc(
        "On SIGTERM, seconds to answer the requests in flight and already received (gunicorn's "
        "graceful_timeout); /ping answers 503 meanwhile (docs/security.md#graceful-drain).",
        "--drain-seconds", "--graceful-timeout"))
    expose_stack_traces = fields.Boolean(load_default=False, metadata=_doc(
        "Send server-side stack traces of model errors to clients (they reveal file paths; keep off in "
        "production).", "--expose-stack-traces/--no-expose-stack-traces"))
    max_request_bytes = fields.Integer(load_default=100 * 1024 * 1024, validate=validate.Range(min=1), metadata=_doc(
        "Largest request body accepted, in bytes (chunked or not); larger ones get a 413 JSON error. A Parquet "
        "body (or a string tensor) may decode to at most 4 times this.", "--max-request-bytes"))
    max_rows = fields.Integer(load_default=1_000_000, validate=validate.Range(min=1), metadata=_doc(
        "Most rows one request may hold, in every format (JSON, CSV, Parquet, tensors: the first dimension); "
        "more is a 400 naming this key.", "--max-rows"))
    max_cells = fields.Integer(load_default=20_000_000, validate=validate.Range(min=1), metadata=_doc(
        "Most cells (rows x columns, or tensor elements) one request may decode into; more is a 400 naming "
        "this key.", "--max-cells"))
    max_json_depth = fields.Integer(load_default=64, validate=validate.Range(min=1, max=200), metadata=_doc(
        "Deepest nesting of lists and objects a JSON body may have (at most 200, so that any value can be "
        "encoded back); deeper is a 400.", "--max-json-depth"))
    log_level = fields.String(
        load_default="info", validate=validate.OneOf(["debug", "info", "warning", "error", "critical"]),
        metadata=_doc("Logging level of the server and of gunicorn.", "--log-level"))
    check_serving_input = fields.Boolean(load_default=False, metadata=_doc(
        "Score the model's saved serving input example at start-up and refuse to start if it fails.",
        "--check-serving-input/--no-check-serving-input"))
    threads = fields.Integer(load_default=1, validate=validate.Range(min=1), metadata=_doc(
        "Threads per worker. 1 (the fastest for models that compute): each worker answers requests on its event "
        "loop, and batches the predictions of those that arrive together. Above 1: requests are answered by a "
        "pool of threads, for models that wait on something else (a network call, a database).", "--threads"))
    worker_class = fields.String(load_default="thread", validate=validate.OneOf(["thread", "sync"]), metadata=_doc(
        "thread: requests are read whole by each worker's event loop (slow clients cost no thread), then "
        "answered by its threads; sync: one request at a time per worker, only behind a buffering proxy "
        "(docs/security.md#slow-clients-and-worker-model).", "--worker-class"))
    header_timeout = fields.Float(load_default=10.0, validate=validate.Range(min=0.1), metadata=_doc(
        "Seconds a client has to send a request's line and headers (a new connection's, or once the next "
        "request on a kept-alive one has begun); later, a JSON 408 and the connection is closed.",
        "--header-timeout"))
    body_timeout = fields.Float(load_default=60.0, validate=validate.Range(min=0.1), metadata=_doc(
        "Seconds a client has to send a request body, after its headers; later, a JSON 408. Raise it for "
        "large bodies over slow links.", "--body-timeout"))
    batching = fields.String(load_default="auto", validate=validate.OneOf(["auto", "on", "off"]), metadata=_doc(
        "Adaptive batching of concurrent requests into one predict call: auto = for models whose rows are scored "
        "independently (scikit-learn); on = also for custom models (you vouch for them); off. Not with the sync "
        "worker class and one thread.", "--batching"))
    max_batch_size = fields.Integer(load_default=64, validate=validate.Range(min=1), metadata=_doc(
        "Largest merged batch, in rows.", "--max-batch-size"))
    max_batch_time_ms = fields.Float(load_default=5.0, validate=validate.Range(min=0), metadata=_doc(
        "With threads > 1: longest a batch waits for requests still being decoded, in milliseconds (with one "
        "thread a batch is what arrived together, and never waits).", "--max-batch-time-ms"))
    protocol = fields.String(load_default="mlflow2", validate=validate.OneOf(PROTOCOLS), metadata=_doc(
        "Wire protocol of the clients: mlflow2 (MLflow 2.x/3.x), mlflow1 (MLflow 1.x: bare DataFrame JSON, "
        "format= parameters, bare responses) or auto (each request answered in its own generation); see "
        "docs/migrating-from-mlflow1.md.", "--protocol"))
    registry_uri = fields.String(load_default=None, allow_none=True, metadata=_doc(
        "Model registry for models:/ URIs, also used by `scoring-server registry`: a directory (the embedded "
        "registry; unset: ~/.scoring-server/registry), postgresql://USER@HOST:PORT/DB (with --artifact-root), "
        "or http(s)://HOST of an MLflow tracking server (read-only).", "--registry"))
    artifact_root = fields.String(load_default=None, allow_none=True, metadata=_doc(
        "Directory every replica reads (a shared mount) where a postgresql:// registry keeps its version "
        "files (required with one); with an MLflow registry, where downloaded versions are cached.",
        "--artifact-root"))
    poll_interval_seconds = fields.Float(load_default=5.0, validate=validate.Range(min=0.05), metadata=_doc(
        "Seconds between checks of a followed models:/ reference (a stage, an @alias or /latest).",
        "--poll-interval"))
    models_file = fields.String(load_default=None, allow_none=True, validate=_existing(Path.is_file, "file"),
                                metadata=_doc(
        "Serve many models: a YAML file of name: uri (or name: {uri: ..., protocol: mlflow1}).", "--models",
        section="Serving many models (docs/multi-model.md)"))
    model_root = fields.String(load_default=None, allow_none=True, validate=_existing(Path.is_dir, "directory"),
                               metadata=_doc(
        "Serve every model directory directly under this folder, by folder name.", "--model-root"))
    registry_models = fields.Boolean(load_default=False, metadata=_doc(
        "Serve every registered model, following its Production stage (or registry_alias when set).",
        "--registry-models/--no-registry-models"))
    registry_alias = fields.String(load_default=None, allow_none=True, metadata=_doc(
        "With registry_models: follow this alias instead of the Production stage.", "--registry-alias"))
    default_model = fields.String(load_default=None, allow_none=True, metadata=_doc(
        "Model answering /invocations requests that name none.", "--default-model"))
    model_param = fields.String(load_default="model", metadata=_doc(
        "The request param that names the model on /invocations (an X-Model-Name header works too).",
        "--model-param"))
    max_loaded_models = fields.Integer(load_default=10, validate=validate.Range(min=1), metadata=_doc(
        "Models kept loaded per worker; the least recently used is unloaded first.", "--max-loaded-models"))
    max_memory_mb = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=1), metadata=_doc(
        "Unload least recently used models while a worker's resident memory is above this (MB).",
        "--max-memory-mb"))
    admin_api = fields.Boolean(load_default=False, metadata=_doc(
        "Enable POST /models and DELETE /models/NAME (add and remove models at run time); needs api_keys_file "
        "(callers need the admin scope).",
        "--admin-api/--no-admin-api"))
    allowed_model_roots = _Names(load_default=[], what="directory", metadata=_doc(
        "Directories (comma-separated) the admin API may load models from: a POST /models uri must be a "
        "models:/ URI or an absolute path that resolves inside one of them (symlinks and '..' cannot leave "
        "them). Needed by admin_api.", "--allowed-model-roots"))
    api_keys_file = fields.String(load_default=None, allow_none=True, metadata=_doc(
        "Require API keys with scopes (score, read, admin) from this keys file, written by `scoring-server keys "
        "create`; re-read when it changes. Unset: every caller may do everything. /ping and /health stay open.",
        "--api-keys", section="Security (docs/security.md)"))
    cors_origins = _Origins(load_default=[], metadata=_doc(
        "Web origins (scheme://host[:port], comma-separated) whose pages may call the server from a browser "
        "(CORS). Empty: no CORS headers.", "--cors-origins"))
    certfile = fields.String(load_default=None, allow_none=True, validate=_existing(Path.is_file, "file"),
                             metadata=_doc("Serve HTTPS with this PEM certificate (chain); needs keyfile.",
                                           "--certfile"))
    keyfile = fields.String(load_default=None, allow_none=True, validate=_existing(Path.is_file, "file"),
                            metadata=_doc("The PEM private key of certfile.", "--keyfile"))
    model_formats = _Names(load_default=list(MODEL_FORMATS), choices=MODEL_FORMATS, what="model format",
                           validate=validate.Length(min=1, error="name at least one format"), metadata=_doc(
        "Model file formats the server loads (comma-separated): skops, onnx, xgboost, lightgbm, torch-export, "
        "keras (frameworks' own files, read without running their code), cloudpickle, pickle (both unpickle, "
        "which runs code from the model file: PyTorch modules saved whole are cloudpickle), code "
        "(models-from-code .py files). Pickle loads are logged as warnings.", "--model-formats",
        section="Loading models (docs/security.md)"))
    skops_trusted_types = _Names(load_default=[], pattern=_TYPE_NAME, what="type name (module.Name)",
                                 metadata=_doc(
        "Types (module.Name, comma-separated) that skops models may contain beyond skops' defaults. A "
        "model's own MLmodel skops_trusted_types are never trusted: a model listing types not granted here "
        "is refused.", "--skops-trusted-types"))
    device = fields.String(load_default="cpu", validate=validate.Regexp(
        r"\A(cpu|cuda(:[0-9]+)?)\Z", error="use cpu, cuda or cuda:N"), metadata=_doc(
        "Where models run when their flavor can choose: cpu, cuda or cuda:N (ONNX Runtime's CUDA execution "
        "provider, PyTorch's device). A device that is not available fails the load.", "--device"))

    metrics = fields.Boolean(load_default=True, metadata=_doc(
        "Export Prometheus metrics on GET /metrics (read scope), summed over all workers.",
        "--metrics/--no-metrics", section="Monitoring (docs/monitoring.md)"))
    metrics_port = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=65535),
                                  metadata=_doc(
        "Serve /metrics on this port (same host) instead of the scoring port, so that scoring clients cannot "
        "read it.", "--metrics-port"))
    access_log = fields.String(load_default="auto", validate=validate.OneOf(["auto", "json", "text", "off"]),
                               metadata=_doc(
        "One access-log line per request on stderr: json (JSON lines), text, or off; auto is json in a "
        "container, text elsewhere.", "--access-log"))
    latency_slo_ms = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0, min_inclusive=False),
                                  metadata=_doc(
        "Latency objective of a scoring request (ms): /monitoring reports the share of requests slower than "
        "it, exactly (it is a bucket of the request duration histogram).", "--latency-slo-ms"))
    max_model_age_days = fields.Float(load_default=None, allow_none=True,
                                      validate=validate.Range(min=0, min_inclusive=False), metadata=_doc(
        "A model older than this (since it was registered, else saved) is reported stale by /monitoring.",
        "--max-model-age-days"))
    drift_sample_fraction = fields.Float(load_default=0.1, validate=validate.Range(min=0, max=1), metadata=_doc(
        "Share of scoring requests whose rows are counted for drift (models with a baseline only); 0 turns "
        "drift off.", "--drift-sample-fraction"))
    drift_window_seconds = fields.Float(load_default=3600.0, validate=validate.Range(min=1), metadata=_doc(
        "Drift compares the rows of this rolling window (s) with the training baseline.",
        "--drift-window-seconds"))
    drift_min_rows = fields.Integer(load_default=100, validate=validate.Range(min=1), metadata=_doc(
        "Rows a window needs before drift is computed and exported.", "--drift-min-rows"))
    drift_warn_psi = fields.Float(load_default=0.1, validate=validate.Range(min=0), metadata=_doc(
        "Population stability index from which a feature's drift is 'warn'.", "--drift-warn-psi"))
    drift_alert_psi = fields.Float(load_default=0.2, validate=validate.Range(min=0), metadata=_doc(
        "Population stability index from which a feature's drift is 'alert'.", "--drift-alert-psi"))
    capture_dir = fields.String(load_default=None, allow_none=True, metadata=_doc(
        "Capture a sample of requests and their predictions (payload logging) into files under this "
        "directory, written by a background thread.", "--capture-dir"))
    capture_fraction = fields.Float(load_default=0.01, validate=validate.Range(min=0, max=1), metadata=_doc(
        "Share of scoring requests captured (with capture_dir).", "--capture-fraction"))
    capture_format = fields.String(load_default="jsonl", validate=validate.OneOf(["jsonl", "parquet"]),
                                   metadata=_doc("File format of captures: JSON Lines or Parquet.", "--capture-format"))
    capture_max_file_mb = fields.Float(load_default=64.0, validate=validate.Range(min=0.001), metadata=_doc(
        "A capture file is closed and a new one started past this size (MB).", "--capture-max-file-mb"))

    @validates_schema
    def _drift_warns_before_alerting(self, data: dict, partial: Any = None, **kwargs: Any) -> None:
        warn, alert = data.get("drift_warn_psi", 0.1), data.get("drift_alert_psi", 0.2)
        if not partial and warn > alert:
            raise ValidationError(f"drift_warn_psi ({warn:g}) must not be above drift_alert_psi ({alert:g})",
                                  "drift_warn_psi")

    @validates_schema
    def _tls_needs_both_files(self, data: dict, partial: Any = None, **kwargs: Any) -> None:
        if not partial and bool(data.get("certfile")) != bool(data.get("keyfile")):
            missing = "keyfile" if data.get("certfile") else "certfile"
            raise ValidationError("HTTPS needs both certfile (--certfile) and keyfile (--keyfile)", missing)

    @validates_schema
    def _sync_workers_have_one_thread(self, data: dict, partial: Any = None, **kwargs: Any) -> None:
        if not partial and data.get("worker_class") == "sync" and data.get("threads", 1) > 1:
            raise ValidationError("sync workers answer one request at a time: use worker_class thread for "
                                  "threads > 1", "worker_class")

    @validates_schema
    def _one_model_or_many(self, data: dict, partial: Any = None, **kwargs: Any) -> None:
        """Checked once, on the merged layers: the two often come from different ones (a file and a flag)."""
        if not partial and data.get("model_uri") and any(data.get(key) for key in MULTI_MODEL_KEYS):
            raise ValidationError("serve one model (-m URI) or many (--models, --model-root, --registry-models), "
                                  "not both", "model_uri")


@dataclass(frozen=True)
class ConfigKey:
    """One configuration key as the ``serve`` flags, the docs and ``conf/default.yaml`` present it."""

    name: str
    field: fields.Field

    @property
    def env(self) -> str:
        return env_var(self.name)

    @property
    def flags(self) -> tuple[str, ...]:
        return self.field.metadata["flags"]

    @property
    def help(self) -> str:
        return self.field.metadata["help"]

    @property
    def section(self) -> str | None:
        return self.field.metadata["section"]

    @property
    def default(self) -> Any:
        return self.field.load_default

    @property
    def default_text(self) -> str:
        """The default as YAML writes it (``null``, ``false``, ``5.0``)."""
        return yaml.safe_dump(self.default, default_flow_style=True).splitlines()[0]  # a list on one line

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The allowed values of a key restricted to a few, else ``None``."""
        one_of = [v for v in self.field.validators if isinstance(v, validate.OneOf)]
        return tuple(one_of[0].choices) if one_of else None


def config_keys() -> list[ConfigKey]:
    """Every configuration key, in the order the docs list them."""
    return [ConfigKey(name, field) for name, field in ServerConfigSchema().fields.items()]


def env_var(key: str) -> str:
    """The one environment variable that sets ``key`` (``port`` → ``SCORING_SERVER_PORT``)."""
    return ENV_PREFIX + key.upper()


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> ServerConfig:
    """Merge the layers and validate the result; ``None`` overrides mean "not given"."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_validated(_read_yaml(path, "config file"), f"config file {path}"))
    values.update(_validated(_from_env(os.environ if env is None else env), "environment"))
    values.update(_validated({k: v for k, v in (overrides or {}).items() if v is not None}, "options"))
    return ServerConfig(**_validated(values, "configuration", partial=False))


def config_from_environment() -> ServerConfig:
    """What ``serve`` without flags would use; for gunicorn started directly (conf/gunicorn.conf.py, wsgi)."""
    return load_config(os.environ.get(CONFIG_ENV))


def default_values() -> dict[str, Any]:
    """Every key with its default, as ``conf/default.yaml`` lists them."""
    return ServerConfigSchema().load({})


@dataclass(frozen=True)
class ModelEntry:
    """A served name, the URI it loads from, and optionally its own wire protocol."""

    name: str
    uri: str
    protocol: str | None = None


class ModelEntrySchema(Schema):
    """One model of a models file or of an admin API request; names end up in URLs and log lines."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Regexp(MODEL_NAME_PATTERN, error=f"use {MODEL_NAME_RULE}"))
    uri = fields.String(required=True, validate=validate.Length(min=1))
    protocol = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PROTOCOLS))

    @post_load
    def _entry(self, data: dict, **kwargs: Any) -> ModelEntry:
        return ModelEntry(**data)


def model_entry(name: Any, spec: Any, source: str) -> ModelEntry:
    """A validated model: ``spec`` is a URI or ``{"uri": ..., "protocol"?: ...}``; ``source`` is for errors.

    The models file and the admin API (``POST /models``) both come here, so they accept the same models.
    """
    values = {"uri": spec} if isinstance(spec, str) else spec
    shown = _shown_name(name)
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: model {shown} needs a uri")
    if "name" in values:  # the name is the models file's key (or the request's "name"), not part of the spec
        raise ConfigError(f"{source}: model {shown}: name: Unknown field.")
    try:
        return ModelEntrySchema().load({**values, "name": name})
    except ValidationError as exc:
        raise ConfigError(f"{source}: model {shown}: {_problems(exc)}") from None


def _shown_name(name: Any) -> str:
    """A name as error messages quote it: its repr, cut short (a refused name may be very long)."""
    text = repr(name)
    return text if len(text) <= MODEL_NAME_MAX + 2 else text[:MODEL_NAME_MAX] + "...'"


def read_models_file(path: str | Path) -> list[ModelEntry]:
    """``models.yaml``: ``name: uri`` or ``name: {uri: ..., protocol: ...}``, optionally under ``models:``."""
    content = _read_yaml(path, "models file")
    models = content.get("models", content)
    if not isinstance(models, dict):
        raise ConfigError(f"models file {path}: expected a mapping of model names to URIs")
    return [model_entry(str(name), spec, f"models file {path}") for name, spec in models.items()]


def _read_yaml(path: str | Path, kind: str) -> dict:
    try:
        content = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {kind} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{kind} {path} is not valid YAML: {exc}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{kind} {path} must hold a mapping of keys to values")
    return content


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    return {key.name: env[key.env] for key in config_keys() if key.env in env}


def _validated(values: dict, source: str, partial: bool = True) -> dict:
    """Validate one layer; only the final merge (``partial=False``) fills in defaults."""
    try:
        return ServerConfigSchema().load(values, partial=partial)
    except ValidationError as exc:
        raise ConfigError(f"invalid {source}: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    """``key: message`` for each key at fault, so the message says where to look."""
    return "; ".join(f"{key}: {' '.join(map(str, msgs))}" for key, msgs in exc.messages.items())
