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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click
from marshmallow import fields

from . import __version__
from .config import CONFIG_ENV, ConfigError, ConfigKey, ServerConfig, config_keys, env_var, load_config
from .registry.cli import registry as registry_command

if TYPE_CHECKING:
    from flavors import LoadedModel

_LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
_CONTEXT = {"help_option_names": ["--help"]}
_BATCH_INPUTS = ("csv", "json", "jsonl", "parquet")  # scoring_server.batch.formats, not imported to start fast
_ON_ERROR = ("fail", "skip", "null")
_MODEL_URI_HELP = "Model directory, file:// URI or models:/NAME/VERSION (also /STAGE, @ALIAS, /latest) registry URI."
#: The values of MLflow's ``--env-manager``: conda is refused, virtualenv and uv build the model's environment.
_ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")


class _CommandLine(click.Group):
    """The group that keeps its arguments: ``--env-manager virtualenv|uv`` re-runs them in the model's
    environment."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["argv"] = list(args)
        return super().parse_args(ctx, args)


@click.group(cls=_CommandLine, context_settings=_CONTEXT)
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


_env_manager_option = click.option(
    "--env-manager", type=click.Choice(_ENV_MANAGERS), default="local", show_default=True,
    help="Where the model runs: local, this Python environment; virtualenv (venv and pip) or uv, its own "
         "environment built from its python_env.yaml and requirements.txt (cached, see "
         "SCORING_SERVER_ENV_ROOT). conda is not available.")


def _mlflow_environment_options(command: Callable) -> Callable:
    """The environment flags of ``mlflow models serve``/``predict`` (``--enable-mlserver``: MLflow 1.x), so that
    commands typed with MLflow habits get an answer about them rather than "No such option"."""
    options = [
        _env_manager_option,
        click.option("--no-conda", is_flag=True, help="MLflow 1.x's --env-manager local: what this server does."),
        click.option("--install-mlflow", is_flag=True,
                     help="No effect: serving needs no MLflow, and a model's environment never gets it."),
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
    _check_env_manager(env_manager)
    if no_conda:
        click.echo("--no-conda: the model runs in this Python environment, as with --env-manager local", err=True)
    if install_mlflow:
        click.echo("--install-mlflow: ignored, serving needs no MLflow", err=True)


def _check_env_manager(env_manager: str) -> None:
    if env_manager == "conda":
        raise click.ClickException("--env-manager conda: conda environments are not available; use virtualenv or "
                                   "uv (built from the model's python_env.yaml) or local (this environment)")


def _run_in_model_environment(env_manager: str, model_uri: str | None, registry_root: str | None = None) -> None:
    """With ``virtualenv`` or ``uv``: build (or reuse) the model's environment and re-run this command in it,
    never returning; with ``local``, return at once."""
    if env_manager == "local":
        return
    from .environments import ModelEnvironmentError, prepare_environment, rerun_in_environment

    if model_uri is None:
        raise click.ClickException(f"--env-manager {env_manager} builds the environment of one model (-m); "
                                   "a server of many models runs them in its own (--env-manager local)")
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)  # unless serve has configured logging already
    try:
        python = prepare_environment(_model_directory(model_uri, registry_root), env_manager)
    except ModelEnvironmentError as exc:
        raise click.ClickException(str(exc)) from None
    rerun_in_environment(python, click.get_current_context().meta["argv"])


def _model_directory(model_uri: str, registry_root: str | None) -> Path:
    """The local directory of a model URI (a registry URI's version directory), which must hold an MLmodel."""
    from .registry import RegistryError, model_directory

    try:
        return model_directory(model_uri, registry_root)
    except RegistryError as exc:
        raise click.ClickException(f"cannot load model {model_uri!r}: {exc}") from None


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
    _run_in_model_environment(env_manager, config.model_uri, config.registry_uri)
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
@click.option("-i", "--input-path", type=click.Path(exists=True),
              help="Input file (default stdin; with --engine spark, a dataset: file, directory or glob).")
@click.option("-o", "--output-path", type=click.Path(),
              help="Output file (default stdout; with --engine spark, the dataset directory written).")
@click.option("-t", "--content-type", type=click.Choice(_BATCH_INPUTS),
              help="Format of the input [default: from its extension, else json].")
@click.option("--output-format", type=click.Choice(_BATCH_INPUTS),
              help="Format of the output: csv and parquet add prediction columns to the input's, jsonl writes a "
                   "line per row, json {\"predictions\": [...]} [default: from its extension, else json].")
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Rows read and scored at a time (memory grows with it, not with the input).")
@click.option("--on-error", type=click.Choice(_ON_ERROR), default="fail", show_default=True,
              help="A row that fails: stop naming it, skip it, or write it with null predictions (skipped and "
                   "null rows also go to --rejects).")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False),
              help="Where failed rows go, in the input's format with their row and error "
                   "[default: OUTPUT.rejects.EXT].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes scoring chunks (output stays in input order).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (shown only when stderr is a terminal).")
@click.option("--engine", type=click.Choice(("local", "spark")), default="local", show_default=True,
              help="spark: score a Parquet/CSV dataset with Spark (pip install 'scoring-server[spark]' and Java).")
@click.option("--spark-master", help="Spark master URL for --engine spark [default: SPARK_MASTER, else local[*]].")
@_mlflow_environment_options
def predict(model_uri: str, input_path: str | None, output_path: str | None, content_type: str | None,
            output_format: str | None, batch_size: int, on_error: str, rejects_path: str | None, workers: int,
            quiet: bool, engine: str, spark_master: str | None, env_manager: str, no_conda: bool,
            install_mlflow: bool, enable_mlserver: bool) -> None:
    """Score a file (or stdin) a chunk of rows at a time, exactly as the server would answer each row."""
    if engine == "spark":
        return _predict_with_spark(model_uri, input_path, output_path, content_type, output_format, spark_master)
    from .batch import BatchError, BatchOptions, run_batch
    from .batch.formats import format_of
    from .errors import ScoringError
    from .pipeline import Scorer

    _check_mlflow_environment(env_manager, no_conda, install_mlflow, enable_mlserver)
    if input_path and Path(input_path).is_dir():
        raise click.ClickException(f"{input_path} is a directory: score one file, or a dataset with --engine spark")
    _run_in_model_environment(env_manager, model_uri)
    input_format = format_of(input_path, content_type)
    if on_error != "fail" and rejects_path is None:
        rejects_path = f"{output_path or input_path or 'stdin'}.rejects.{input_format}"
    options = BatchOptions(input_path, input_format, output_path, format_of(output_path, output_format),
                           batch_size, on_error, rejects_path, workers, progress=not quiet)
    scorer = Scorer(_load(model_uri))
    try:
        summary = run_batch(scorer, options)
    except BatchError as exc:
        raise click.ClickException(str(exc)) from None
    except ScoringError as exc:
        raise click.ClickException(f"{exc.error_code}: {exc.message}") from None
    except OSError as exc:  # an output directory missing, a disk full
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    if summary.rejected and not quiet:
        click.echo(f"{summary.rejected} of {summary.rows} rows failed; written to {rejects_path}", err=True)


def _predict_with_spark(model_uri: str, input_path: str | None, output_path: str | None, input_format: str | None,
                        output_format: str | None, master: str | None) -> None:
    """``predict --engine spark``: the dataset scored by Spark executors (scoring_server.spark)."""
    if not input_path or not output_path:
        raise click.ClickException("--engine spark needs -i DATASET and -o OUTPUT (Spark writes a directory)")
    try:
        from .spark.job import SparkJobError, run_predict_job
    except ImportError:
        raise click.ClickException("--engine spark needs pyspark: pip install 'scoring-server[spark]'") from None
    try:
        run_predict_job(model_uri, input_path, output_path, input_format, output_format, master)
    except SparkJobError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {output_path}", err=True)


@main.command(context_settings=_CONTEXT)
@click.option("-m", "--model-uri", required=True, help=_MODEL_URI_HELP)
@_env_manager_option
def validate(model_uri: str, env_manager: str) -> None:
    """Score the model's saved serving input example through the full server path."""
    from .pipeline import Scorer
    from .serving_input_check import ServingInputCheckError, check_serving_input_example

    _check_env_manager(env_manager)
    _run_in_model_environment(env_manager, model_uri)
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


@main.command("generate-k8s", context_settings=_CONTEXT)
@click.option("-m", "--model-uri", required=True, help=_MODEL_URI_HELP + " Loaded once to measure its memory.")
@click.option("--image", required=True, help="The model's image (scoring-server build-docker), e.g. registry/iris:1.")
@click.option("--name", help="Name of the Deployment, Service... [default: from the model's directory or name]")
@click.option("--namespace", help="Namespace of every manifest [default: none, kubectl's current one].")
@click.option("--replicas", type=click.IntRange(min=1), default=2, show_default=True,
              help="Pods at least (the autoscaler's minimum).")
@click.option("--max-replicas", type=click.IntRange(min=1), default=6, show_default=True,
              help="Pods at most (the autoscaler's maximum).")
@click.option("--cpu", default="1", show_default=True,
              help="CPU request and limit of a pod (2, 1.5, 500m); one worker per CPU of the limit, rounded up.")
@click.option("--cpu-target", type=click.IntRange(min=1, max=100), default=70, show_default=True,
              help="Average CPU utilization (percent of the request) the autoscaler keeps.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Threads per worker (docs/configuration.md: threads).")
@click.option("--drain-seconds", type=click.IntRange(min=0), default=None,
              help="The server's drain on SIGTERM; the grace period covers it [default: the server's].")
@click.option("--service-monitor", is_flag=True,
              help="Add a Prometheus Operator ServiceMonitor (instead of the pods' scrape annotations).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="A file (all manifests) or an existing directory (one file each) [default: stdout].")
def generate_k8s(model_uri: str, image: str, name: str | None, namespace: str | None, replicas: int,
                 max_replicas: int, cpu: str, cpu_target: int, threads: int, drain_seconds: int | None,
                 service_monitor: bool, output: Path | None) -> None:
    """Write Kubernetes manifests serving the model's image: Deployment, Service, autoscaler, disruption budget."""
    from .deploy import kubernetes

    try:
        settings = kubernetes.Settings(
            name=kubernetes.check_name(name or kubernetes.default_name(model_uri)), image=image, namespace=namespace,
            replicas=replicas, max_replicas=max_replicas, cpu_millis=kubernetes.parse_cpu(cpu),
            cpu_target_percent=cpu_target, threads=threads, service_monitor=service_monitor,
            drain_seconds=kubernetes.DEFAULT_DRAIN_SECONDS if drain_seconds is None else drain_seconds)
        memory = kubernetes.measure_memory(model_uri)
        documents = kubernetes.manifests(settings, memory)
    except kubernetes.KubernetesError as exc:
        raise click.ClickException(str(exc)) from None
    if output is None:
        click.echo(kubernetes.render(documents, settings, memory), nl=False)
        return
    for path in kubernetes.write(documents, settings, memory, output):
        click.echo(f"Wrote {path}", err=True)


_base_image_option = click.option(
    "--base-image", help="Base image with Python and pip (Debian-based: it runs useradd) [default: "
                         "python:X.Y-slim of the model's python_env.yaml].")


@main.command("generate-dockerfile", context_settings=_CONTEXT)
@click.option("-m", "--model-uri", required=True, help=_MODEL_URI_HELP)
@click.option("-d", "--output-directory", "output_directory", default="scoring-server-dockerfile", show_default=True,
              type=click.Path(file_okay=False), help="Where to write the build context (new or empty).")
@_base_image_option
def generate_dockerfile(model_uri: str, output_directory: str, base_image: str | None) -> None:
    """Write a container build context of the model: Dockerfile, the model, scoring-server's wheel, steps.py."""
    from .deploy.docker import DeployError, write_build_context

    try:
        dockerfile = write_build_context(model_uri, Path(output_directory), base_image)
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {dockerfile}; build it with: docker build -t IMAGE {output_directory}")


@main.command("build-docker", context_settings=_CONTEXT)
@click.option("-m", "--model-uri", required=True, help=_MODEL_URI_HELP)
@click.option("-n", "--name", "image", default="scoring-server-model", show_default=True, help="Image name (and tag).")
@_base_image_option
def build_docker(model_uri: str, image: str, base_image: str | None) -> None:
    """Build a container image of the model with docker, podman or buildah (the first on PATH)."""
    from .deploy.docker import DeployError, build_image

    try:
        runtime = build_image(model_uri, image, base_image)
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Built {image} with {runtime}; run it with: {runtime} run -p 8080:8080 {image}")


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
