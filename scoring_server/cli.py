"""The ``scoring-server`` command line: ``serve``, ``predict``, ``validate``, ``baseline``, ``registry`` and
``keys``.

The flags of ``serve`` are generated from the configuration schema (one per key); its short
flags (``-m -h -p -w -t``) are a contract other tools rely on. ``-h`` is the host, so help is
``--help`` only. Modules that load models (pandas, scikit-learn, Flask) are imported inside the
commands that need them, so ``--help`` and the registry commands start fast.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click
from marshmallow import fields

from . import __version__, content_types
from .config import CONFIG_ENV, ConfigError, ConfigKey, ServerConfig, config_keys, env_var, load_config
from .registry.cli import registry as registry_command

if TYPE_CHECKING:
    from flavors import LoadedModel

_LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
_CONTEXT = {"help_option_names": ["--help"]}
_BATCH_TYPES = {"json": content_types.JSON, "csv": content_types.CSV, "parquet": content_types.PARQUET}
_MODEL_URI_HELP = "Model directory, file:// URI or models:/NAME/VERSION (also /STAGE, @ALIAS, /latest) registry URI."
#: The values of MLflow's ``--env-manager``; only ``local`` is built here.
_ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")


@click.group(context_settings=_CONTEXT)
@click.version_option(__version__, "--version", prog_name="scoring-server")
def main() -> None:
    """Serve MLflow-format models over HTTP, or score files in batch."""


def _config_options(command: Callable) -> Callable:
    """One ``serve`` option per configuration key, generated from the schema so that none is missing.

    Every option defaults to ``None`` ("not given"), so the config file and environment show through.
    """
    for key in reversed(config_keys()):  # click lists options in the order they are applied, last first
        command = click.option(*key.flags, key.name, default=None, help=_option_help(key),
                               **_option_type(key))(command)
    return command


def _option_type(key: ConfigKey) -> dict[str, Any]:
    """The click type of a key: its choices, or the Python type of its field (booleans are flag pairs)."""
    if key.choices:
        return {"type": click.Choice(key.choices)}
    python_type = {fields.Integer: int, fields.Float: float, fields.String: str}.get(type(key.field))
    return {"type": python_type} if python_type else {}


def _option_help(key: ConfigKey) -> str:
    default = "" if key.default is None else f"default: {key.default_text}; "
    return f"{key.help} [{default}env: {key.env}]"


def _mlflow_environment_options(command: Callable) -> Callable:
    """The environment flags of ``mlflow models serve``/``predict`` (``--enable-mlserver``: MLflow 1.x), so that
    commands typed with MLflow habits get an answer about them rather than "No such option"."""
    options = [
        click.option("--env-manager", type=click.Choice(_ENV_MANAGERS), default="local", show_default=True,
                     help="Where the model runs: local, this Python environment (install the model's "
                          "requirements.txt into it). conda, virtualenv and uv are not built yet."),
        click.option("--no-conda", is_flag=True, help="MLflow 1.x's --env-manager local: what this server does."),
        click.option("--install-mlflow", is_flag=True,
                     help="No effect: no environment is built, and serving needs no MLflow."),
        click.option("--enable-mlserver", is_flag=True,
                     help="MLflow 1.x's MLServer (v2 inference protocol): not available, refused."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _check_mlflow_environment(env_manager: str, no_conda: bool, install_mlflow: bool, enable_mlserver: bool) -> None:
    """Refuse in one line what cannot be honoured; say in one line why an honoured flag changes nothing."""
    if enable_mlserver:
        raise click.ClickException("--enable-mlserver: MLServer and its v2 inference protocol are not available; "
                                   "this server answers MLflow's /invocations protocol")
    if env_manager != "local":
        raise click.ClickException(f"--env-manager {env_manager}: building {env_manager} environments is not "
                                   "supported yet; install the model's requirements into this Python environment "
                                   "and use --env-manager local (the default)")
    if no_conda:
        click.echo("--no-conda: the model runs in this Python environment, as with --env-manager local", err=True)
    if install_mlflow:
        click.echo("--install-mlflow: ignored, no environment is built and serving needs no MLflow", err=True)


@main.command(context_settings=_CONTEXT)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=CONFIG_ENV,
              help=f"YAML configuration file (docs/configuration.md) [env: {CONFIG_ENV}].")
@_config_options
@_mlflow_environment_options
def serve(config_path: str | None, env_manager: str, no_conda: bool, install_mlflow: bool, enable_mlserver: bool,
          **options: Any) -> None:
    """Serve a model on /invocations with gunicorn; /ping answers once it is loaded."""
    from .monitoring.request_ids import RequestIdFormatter

    _check_mlflow_environment(env_manager, no_conda, install_mlflow, enable_mlserver)
    config = _config(config_path, options)
    handler = logging.StreamHandler()
    handler.setFormatter(RequestIdFormatter(_LOG_FORMAT))  # a request's lines end with its ID
    logging.basicConfig(level=config.log_level.upper(), handlers=[handler])
    _serve(config)


def _serve(config: ServerConfig) -> None:
    """Load the model(s) and serve them; the heavy imports (pandas, Flask, gunicorn) happen only here."""
    from flavors.errors import ModelLoadError

    from .app import create_app
    from .monitoring.multiprocess import create_server_directory
    from .registry import RegistryError
    from .security.keys import KeysError
    from .server import answering_while_loading, bind_listener, run
    from .serving_input_check import ServingInputCheckError

    try:
        listener = bind_listener(config)  # first: a port in use is said before a long model load
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {reason}") from None
    create_server_directory()  # before the model loads: its load is counted
    try:
        with answering_while_loading(listener, config):
            app = create_app(config)
    except (ServingInputCheckError, KeysError, ConfigError) as exc:
        raise click.ClickException(f"refusing to serve: {exc}") from None
    except (ModelLoadError, RegistryError, ValueError) as exc:
        raise click.ClickException(f"cannot load model {config.model_uri!r}: {exc}") from None
    run(app, config, listener)


@main.command(context_settings=_CONTEXT)
@click.option("-m", "--model-uri", required=True, help=_MODEL_URI_HELP)
@click.option("-i", "--input-path", type=click.Path(exists=True, dir_okay=False), help="Input file (default stdin).")
@click.option("-o", "--output-path", type=click.Path(dir_okay=False), help="Output file (default stdout).")
@click.option("-t", "--content-type", type=click.Choice(sorted(_BATCH_TYPES)), default="json", show_default=True,
              help="Format of the input.")
@_mlflow_environment_options
def predict(model_uri: str, input_path: str | None, output_path: str | None, content_type: str, env_manager: str,
            no_conda: bool, install_mlflow: bool, enable_mlserver: bool) -> None:
    """Score a file (or stdin) exactly as the server would, writing {"predictions": ...}."""
    from .errors import ScoringError
    from .pipeline import Scorer

    _check_mlflow_environment(env_manager, no_conda, install_mlflow, enable_mlserver)
    model = _load(model_uri)
    body = Path(input_path).read_bytes() if input_path else sys.stdin.buffer.read()
    try:
        result = Scorer(model).score(body, _BATCH_TYPES[content_type])
    except ScoringError as exc:
        raise click.ClickException(f"{exc.error_code}: {exc.message}") from None
    if output_path:
        Path(output_path).write_bytes(result + b"\n")
    else:
        sys.stdout.buffer.write(result + b"\n")


@main.command(context_settings=_CONTEXT)
@click.option("-m", "--model-uri", required=True, help=_MODEL_URI_HELP)
def validate(model_uri: str) -> None:
    """Score the model's saved serving input example through the full server path."""
    from .pipeline import Scorer
    from .serving_input_check import ServingInputCheckError, check_serving_input_example

    try:
        result = check_serving_input_example(Scorer(_load(model_uri)))
    except ServingInputCheckError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"OK: {model_uri} scores its serving input example: {result.decode()}")


@main.command(context_settings=_CONTEXT)
@click.option("-m", "--model-uri", required=True,
              help="Model directory or file:// URI (the baseline is written into it).")
@click.option("-i", "--input-path", required=True, type=click.Path(dir_okay=False),
              help="Training data: a .csv or .parquet file with the model's input columns.")
@click.option("--bins", type=click.IntRange(min=2, max=100), default=10, show_default=True,
              help="Quantile bins of a numeric column (fewer for discrete data).")
@click.option("--max-rows", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Training rows used at most (a uniform sample beyond).")
def baseline(model_uri: str, input_path: str, bins: int, max_rows: int) -> None:
    """Save the training data's distributions into the model directory (baseline.json), for drift while serving."""
    from .monitoring.baseline import BaselineError, build_baseline, read_training_data, write_baseline

    if model_uri.startswith("models:"):
        raise click.ClickException("a registered version cannot change: make the baseline in the model directory "
                                   "before registering it")
    model = _load(model_uri)
    try:
        made = build_baseline(model, read_training_data(input_path), bins, max_rows)
    except BaselineError as exc:
        raise click.ClickException(str(exc)) from None
    path = write_baseline(model.metadata.path, made)
    columns = ", ".join(f"{column.name} ({column.kind})" for column in made.features + made.predictions)
    skipped = f"; not binned: {', '.join(made.skipped)}" if made.skipped else ""
    click.echo(f"Wrote {path} from {made.rows} rows: {columns}{skipped}")


main.add_command(registry_command)

_KEYS_FILE_ENV = env_var("api_keys_file")
_keys_file_option = click.option(
    "--file", "path", envvar=_KEYS_FILE_ENV, required=True, type=click.Path(dir_okay=False),
    help=f"The keys file a server reads with --api-keys [env: {_KEYS_FILE_ENV}].")


@main.group("keys", context_settings=_CONTEXT)
def keys_group() -> None:
    """API keys with scopes (score, read, admin): the keys file holds only their salted hashes."""


@keys_group.command("create", context_settings=_CONTEXT)
@click.option("--name", required=True, help="Who holds the key (letters, digits, '.', '_', '-'), shown in logs.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="score (/invocations), read (GET /models, /version, ...) or admin (POST/DELETE /models); "
                   "repeat for several.")
@_keys_file_option
def create_key(name: str, scopes: tuple[str, ...], path: str) -> None:
    """Add a new key to the keys file (made if missing) and print it: only the key, on stdout, only now."""
    from .security.keys import KeysError, create_key

    try:
        key, entry = create_key(path, name, [s.strip() for scope in scopes for s in scope.split(",") if s.strip()])
    except KeysError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(key)
    click.echo(f"Created key {entry.name!r} with scopes {', '.join(sorted(entry.scopes))} in {path}. "
               "Store it now: it is not shown again.", err=True)


@keys_group.command("list", context_settings=_CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_keys_file_option
def list_keys(as_json: bool, path: str) -> None:
    """Names, ids, scopes and creation times of the keys (never the keys or their hashes)."""
    import json

    from .security.keys import KeysError, read_keys

    try:
        rows = [key.public() for key in read_keys(path)]
    except KeysError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [["NAME", "ID", "SCOPES", "CREATED"]] + [
        [row["name"], row["id"], ",".join(row["scopes"]), row["created"]] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


@keys_group.command("revoke", context_settings=_CONTEXT)
@click.argument("name")
@_keys_file_option
def revoke_key(name: str, path: str) -> None:
    """Remove the key NAME; running servers refuse it within about a second."""
    from .security.keys import KeysError, revoke_key

    try:
        revoke_key(path, name)
    except KeysError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Revoked key {name!r} in {path}.", err=True)


def _load(model_uri: str) -> LoadedModel:
    from flavors import ModelLoadError, load_model

    try:
        return load_model(model_uri)
    except ModelLoadError as exc:
        raise click.ClickException(f"cannot load model {model_uri!r}: {exc}") from None


def _config(config_path: str | None, overrides: dict[str, Any]) -> ServerConfig:
    try:
        return load_config(config_path, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
