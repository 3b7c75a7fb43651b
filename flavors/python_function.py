"""Custom Python models (``loader_module: mlflow.pyfunc.model``): loading and saving.

The model is a pickled :class:`~flavors.python_model.PythonModel` (``python_model.pkl``) or a
models-from-code ``.py`` file, plus named artifacts copied under ``artifacts/``. Modules of the
model's ``code`` directory must be imported while it loads (see :mod:`flavors.code_paths`).
"""
from __future__ import annotations

import inspect
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from flavors.base import Capabilities, takes_params
from flavors.code_model import load_code_model
from flavors.code_paths import copy_code_paths, model_code, provides_module
from flavors.errors import ModelLoadError
from flavors.mlflow_aliases import dump_python_model, load_pickle
from flavors.mlmodel import MLMODEL_FILE, ModelMetadata
from flavors.policy import CLOUDPICKLE, CODE, DEFAULT_POLICY, LoadingPolicy
from flavors.model_writer import (
    pinned, prepare_model_dir, pyfunc_section, resolve_signature, save_input_example, write_model,
)
from flavors.python_model import FunctionModel, PythonModel, PythonModelContext
from flavors.signature import ModelSignature

FLAVOR_NAME = "python_function"
LOADER_MODULE = "mlflow.pyfunc.model"
CODE_MODEL_LOADER_MODULE = "mlflow.pyfunc.loaders.code_model"
PICKLE_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"

_log = logging.getLogger(__name__)


class PythonModelPredictor:
    """Calls ``python_model.predict`` with the context and params its signature asks for.

    ``code_dir`` is the model's code directory, named when ``predict`` imports one of its
    modules too late (after the load).
    """

    def __init__(self, python_model: Any, context: PythonModelContext, code_dir: Path | None = None) -> None:
        self.python_model = python_model
        self.context = context
        self.code_dir = code_dir
        parameters = inspect.signature(python_model.predict).parameters
        self.capabilities = Capabilities(row_independent=False, accepts_params=takes_params(python_model.predict))
        # MLflow's rule: the model wants the context if it names it, or takes two inputs besides params.
        self._pass_context = "context" in parameters or len([p for p in parameters if p != "params"]) == 2

    def predict(self, data: Any, params: dict | None = None) -> Any:
        args = (self.context, data) if self._pass_context else (data,)
        try:
            if self.capabilities.accepts_params:
                return self.python_model.predict(*args, params=params)
            return self.python_model.predict(*args)
        except ModuleNotFoundError as exc:
            if provides_module(self.code_dir, exc.name):
                raise ModuleNotFoundError(
                    f"{exc} at predict time: modules of the model's code directory {self.code_dir} are "
                    "importable only while the model loads; import it at the top of the model's module "
                    "or in load_context",
                    name=exc.name,
                ) from exc
            raise


class PythonModelFlavor:
    name = FLAVOR_NAME
    loader_modules = (LOADER_MODULE, CODE_MODEL_LOADER_MODULE)

    def shared_modules(self, metadata: ModelMetadata) -> tuple[str, ...]:
        """What loading a custom model imports before its own code runs."""
        return ("cloudpickle",)

    def model_format(self, metadata: ModelMetadata) -> str:
        """``code`` for a models-from-code file, else ``cloudpickle`` (``python_model.pkl``)."""
        return _model_file(metadata.path, metadata.pyfunc_conf or {})[1]

    def load(self, metadata: ModelMetadata, policy: LoadingPolicy = DEFAULT_POLICY) -> PythonModelPredictor:
        conf = metadata.pyfunc_conf or {}
        path, model_format = _model_file(metadata.path, conf)
        policy.require(model_format, path)  # before any of the model's code can run
        with model_code(metadata.path, conf.get("code")) as code_dir:
            python_model = _load_python_model(path, model_format, metadata.path, conf)
            context = PythonModelContext(_artifact_paths(metadata.path, conf), conf.get("config") or {})
            _load_context(python_model, context, metadata.path)
        return PythonModelPredictor(python_model, context, code_dir)


def _load_context(python_model: Any, context: PythonModelContext, model_dir: Path) -> None:
    load_context = getattr(python_model, "load_context", None)
    if load_context is None:
        return
    try:
        load_context(context)
    except Exception as exc:
        raise ModelLoadError(
            f"{type(python_model).__name__}.load_context failed for {model_dir}: {type(exc).__name__}: {exc}"
        ) from exc


def _model_file(model_dir: Path, conf: dict) -> tuple[Path, str]:
    """The file the model is loaded from, and its format (``code`` or ``cloudpickle``)."""
    if conf.get("model_code_path"):  # MLflow keeps the original path; the copy is at the top level
        return model_dir / Path(conf["model_code_path"]).name, CODE
    if str(conf.get("python_model", "")).endswith(".py"):
        return model_dir / conf["python_model"], CODE
    if conf.get("python_model"):
        return model_dir / conf["python_model"], CLOUDPICKLE
    raise ModelLoadError(f"{model_dir / MLMODEL_FILE}: python_function names neither python_model nor model_code_path")


def _load_python_model(path: Path, model_format: str, model_dir: Path, conf: dict) -> Any:
    if model_format == CODE:
        model = load_code_model(path)
    else:
        _warn_on_cloudpickle_mismatch(conf.get("cloudpickle_version"))
        model = load_pickle(path)
    if not callable(getattr(model, "predict", None)):
        if not callable(model):
            raise ModelLoadError(f"the model in {model_dir} has no predict method ({type(model).__name__})")
        model = FunctionModel(model)
    return model


def _warn_on_cloudpickle_mismatch(saved_with: str | None) -> None:
    installed = version("cloudpickle")
    if saved_with and saved_with != installed:
        _log.warning("python_model was pickled with cloudpickle %s, loading with %s", saved_with, installed)


def _artifact_paths(model_dir: Path, conf: dict) -> dict[str, str]:
    paths = {}
    for name, info in (conf.get("artifacts") or {}).items():
        path = model_dir / info["path"]
        if not path.exists():
            raise ModelLoadError(f"artifact {name!r} not found at {path}")
        paths[name] = str(path)
    return paths


def save_model(
    path: str | Path,
    *,
    python_model: PythonModel | str | Path,
    artifacts: Mapping[str, str | Path] | None = None,
    code_paths: Iterable[str | Path] | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    model_config: dict | None = None,
    metadata: dict | None = None,
    baseline_data: Any = None,
) -> ModelMetadata:
    """Save a custom model as an MLflow-format model directory that MLflow can load too.

    ``python_model`` is a PythonModel instance (cloudpickled) or the path of a models-from-code
    ``.py`` file (copied, and run once now to check that it calls ``set_model``).
    ``artifacts`` maps names to local files or directories, copied into ``artifacts/``; at load
    time ``context.artifacts`` maps the same names to their absolute paths. Without a
    ``signature``, one is inferred from ``input_example`` (or a ``(data, params)`` pair) and the
    model's answer to it, as MLflow does; ``signature=False`` saves none. ``pip_requirements``
    replaces the default requirements (the installed cloudpickle, numpy and pandas).
    ``baseline_data`` (a DataFrame of training rows) adds the drift baseline (``baseline.json``).
    """
    model_dir = prepare_model_dir(path)
    model = python_model
    if isinstance(python_model, (str, Path)):
        code_file = Path(python_model)
        model = load_code_model(code_file)
        shutil.copy2(code_file, model_dir / code_file.name)
        pyfunc = pyfunc_section(CODE_MODEL_LOADER_MODULE, model_code_path=code_file.name)
    elif isinstance(python_model, PythonModel):
        dump_python_model(python_model, model_dir / PICKLE_FILE)
        pyfunc = pyfunc_section(LOADER_MODULE, python_model=PICKLE_FILE)
    else:
        raise TypeError(f"python_model must be a PythonModel or a .py file path, got {type(python_model).__name__}")
    pyfunc.update(cloudpickle_version=version("cloudpickle"), code=copy_code_paths(code_paths, model_dir), streamable=False)
    if artifacts:
        pyfunc["artifacts"] = _copy_artifacts(artifacts, model_dir)
    if model_config:
        pyfunc["config"] = model_config
    saved = write_model(
        model_dir,
        {FLAVOR_NAME: pyfunc},
        requirements=pinned("cloudpickle", "numpy", "pandas") if pip_requirements is None else list(pip_requirements),
        signature=resolve_signature(signature, input_example, _example_predict(model, model_dir, pyfunc)),
        example_info=save_input_example(model_dir, input_example),
        metadata=metadata,
    )
    if baseline_data is None:
        return saved
    from scoring_server.monitoring.baseline import save_baseline  # the server's path: signature, fast path

    save_baseline(model_dir, baseline_data)
    return saved


def _example_predict(model: Any, model_dir: Path, conf: dict) -> Callable[[Any, dict | None], Any]:
    """Calls the model as it will be served (context loaded first), for inferring its signature."""
    def predict(data: Any, params: dict | None) -> Any:
        python_model = model if callable(getattr(model, "predict", None)) else FunctionModel(model)
        context = PythonModelContext(_artifact_paths(model_dir, conf), conf.get("config") or {})
        with model_code(model_dir, conf.get("code")):
            _load_context(python_model, context, model_dir)
        return PythonModelPredictor(python_model, context).predict(data, params)
    return predict


def _copy_artifacts(artifacts: Mapping[str, str | Path], model_dir: Path) -> dict:
    """Copy each artifact to ``artifacts/<its file name>``; the MLmodel ``artifacts`` section."""
    target = model_dir / ARTIFACTS_DIR
    target.mkdir()
    section = {}
    for name, uri in artifacts.items():
        source = Path(uri).expanduser()
        destination = target / source.name
        if destination.exists():
            raise ValueError(f"artifact {name!r}: another artifact is already named {source.name!r}")
        if source.is_dir():
            shutil.copytree(source, destination)
        elif source.is_file():
            shutil.copy2(source, destination)
        else:
            raise FileNotFoundError(f"artifact {name!r} not found: {source}")
        section[name] = {"path": f"{ARTIFACTS_DIR}/{source.name}", "uri": str(uri)}
    return section
