"""The ``scoring-server`` command line: ``serve``, ``predict`` and ``validate``.

The flags of ``serve`` (``-m -h -p -w -t``) are a contract other tools rely on; ``-h`` is
the host, so help is ``--help`` only.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from flavors import LoadedModel, load_model
from flavors.errors import ModelLoadError

from . import __version__, content_types
from .app import create_app
from .config import ConfigError, load_config
from .errors import ScoringError
from .pipeline import Scorer
from .registry import RegistryError
from .registry.cli import registry as registry_command
from .serving_input_check import ServingInputCheckError, check_serving_input_example

_LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
_CONTEXT = {"help_option_names": ["--help"]}
_BATCH_TYPES = {"json": content_types.JSON, "csv": content_types.CSV, "parquet": content_types.PARQUET}


@click.group(context_settings=_CONTEXT)
@click.version_option(__version__, "--version", prog_name="scoring-server")
def main() -> None:
    """Serve MLflow-format models over HTTP, or score files in batch."""


@main.command(context_settings=_CONTEXT)
@click.option("-m", "--model-uri", help="Model directory or file:// URI.")
@click.option("-h", "--host", help="Address to bind (default 127.0.0.1).")
@click.option("-p", "--port", type=int, help="Port to bind (default 5000).")
@click.option("-w", "--workers", type=int, help="Number of gunicorn worker processes (default 1).")
@click.option("-t", "--timeout", type=int, help="Seconds before a silent worker is restarted (default 60).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML configuration file.")
@click.option("--expose-stack-traces/--no-expose-stack-traces", default=None,
              help="Send the server-side stack trace of model errors to clients (off by default).")
@click.option("--check-serving-input/--no-check-serving-input", default=None,
              help="Score the model's saved serving input example before serving; refuse to start if it fails.")
@click.option("--threads", type=int, help="Threads per worker (default 1); above 1 enables batching.")
@click.option("--batching", type=click.Choice(["auto", "on", "off"]),
              help="Adaptive batching of concurrent requests (default auto: scikit-learn models).")
@click.option("--max-batch-size", type=int, help="Largest merged batch in rows (default 64).")
@click.option("--max-batch-time-ms", type=float, help="Longest wait for a batch to fill (default 5).")
@click.option("--protocol", type=click.Choice(["mlflow2", "mlflow1", "auto"]),
              help="Wire protocol generation of the clients (default mlflow2); see docs/migrating-from-mlflow1.md.")
@click.option("--registry", "registry_uri", help="Registry root for models:/ URIs (default $SCORING_REGISTRY_URI).")
@click.option("--poll-interval", "poll_interval_seconds", type=float,
              help="Seconds between checks of a models:/ stage or alias being followed (default 5).")
@click.option("--models", "models_file", type=click.Path(exists=True, dir_okay=False),
              help="Serve many models: a YAML file of name: uri (docs/multi-model.md).")
@click.option("--model-root", type=click.Path(exists=True, file_okay=False),
              help="Serve every model directory under this folder, by folder name.")
@click.option("--registry-models", is_flag=True, default=None,
              help="Serve every registered model, following its Production stage (or --registry-alias).")
@click.option("--registry-alias", help="With --registry-models: follow this alias instead of Production.")
@click.option("--default-model", help="Model answering /invocations requests that name none.")
@click.option("--max-loaded-models", type=int, help="Models kept loaded per worker (default 10).")
@click.option("--max-memory-mb", type=float, help="Unload least recently used models above this worker RSS.")
@click.option("--admin-api/--no-admin-api", default=None, help="Enable POST /models and DELETE /models/NAME.")
def serve(model_uri, host, port, workers, timeout, config_path, expose_stack_traces, check_serving_input,
          threads, batching, max_batch_size, max_batch_time_ms, protocol, registry_uri,
          poll_interval_seconds, models_file, model_root, registry_models, registry_alias, default_model,
          max_loaded_models, max_memory_mb, admin_api) -> None:
    """Serve a model on /invocations with gunicorn; /ping answers once it is loaded."""
    from .server import run

    config = _config(config_path, model_uri=model_uri, host=host, port=port, workers=workers,
                     timeout=timeout, expose_stack_traces=expose_stack_traces,
                     check_serving_input=check_serving_input, threads=threads, batching=batching,
                     max_batch_size=max_batch_size, max_batch_time_ms=max_batch_time_ms, protocol=protocol,
                     registry_uri=registry_uri, poll_interval_seconds=poll_interval_seconds,
                     models_file=models_file, model_root=model_root, registry_models=registry_models,
                     registry_alias=registry_alias, default_model=default_model,
                     max_loaded_models=max_loaded_models, max_memory_mb=max_memory_mb, admin_api=admin_api)
    logging.basicConfig(level=config.log_level.upper(), format=_LOG_FORMAT)
    try:
        app = create_app(config)
    except ServingInputCheckError as exc:
        raise click.ClickException(f"refusing to serve: {exc}") from None
    except (ModelLoadError, RegistryError, ValueError) as exc:
        raise click.ClickException(f"cannot load model {config.model_uri!r}: {exc}") from None
    run(app, config)


@main.command(context_settings=_CONTEXT)
@click.option("-m", "--model-uri", required=True, help="Model directory or file:// URI.")
@click.option("-i", "--input-path", type=click.Path(exists=True, dir_okay=False), help="Input file (default stdin).")
@click.option("-o", "--output-path", type=click.Path(dir_okay=False), help="Output file (default stdout).")
@click.option("-t", "--content-type", type=click.Choice(sorted(_BATCH_TYPES)), default="json", show_default=True,
              help="Format of the input.")
def predict(model_uri, input_path, output_path, content_type) -> None:
    """Score a file (or stdin) exactly as the server would, writing {"predictions": ...}."""
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
@click.option("-m", "--model-uri", required=True, help="Model directory or file:// URI.")
def validate(model_uri) -> None:
    """Score the model's saved serving input example through the full server path."""
    try:
        result = check_serving_input_example(Scorer(_load(model_uri)))
    except ServingInputCheckError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"OK: {model_uri} scores its serving input example: {result.decode()}")


main.add_command(registry_command)


def _load(model_uri: str) -> LoadedModel:
    try:
        return load_model(model_uri)
    except ModelLoadError as exc:
        raise click.ClickException(f"cannot load model {model_uri!r}: {exc}") from None


def _config(config_path, **overrides):
    try:
        return load_config(config_path, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
