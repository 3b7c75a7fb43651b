"""XGBoost models (``loader_module: mlflow.xgboost``): loading and saving.

MLflow writes the model in XGBoost's own format (``model.ubj`` by default, ``.json`` or the legacy
``.xgb`` on request) and records the Python class in ``model_class``: an ``xgboost.core.Booster``
answers what ``Booster.predict`` answers (float32 probabilities or margins, after checking the
feature names), a scikit-learn-API model (``XGBClassifier``, ``XGBRegressor``, ...) answers its
``predict`` (labels for classifiers). Both are rebuilt by the class's ``load_model``, never from a
pickle; unlike MLflow, the class must be an XGBoost model class, so ``MLmodel`` cannot make the
loader import and instantiate anything else.

As MLflow's pyfunc, ``predict`` passes the request's params (those the signature declares) that
are keywords of the model's ``predict`` (``output_margin``, ``iteration_range``, ...) and drops the
others. Trees score each row alone, so predictors are row-independent; a float matrix predicts as
the DataFrame of the same columns (a Booster's matrix gets its feature names back), except for
models with categorical features, which get no array input.

Fork safety: the server loads a model in its master and forks the workers. XGBoost's OpenMP
runtime (GNU libgomp) does not survive a fork once it has started its threads: a worker's first
prediction then hangs forever. So the process that loads a model (the master) loads it and
predicts with it on one thread (``xgboost.config_context(nthread=1)``, which is per thread, and
starts no thread pool); any other process (a forked worker) predicts with XGBoost's default
threads.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from flavors.base import ArrayInput, Capabilities, import_framework
from flavors.errors import ModelLoadError
from flavors.mlmodel import ModelMetadata
from flavors.model_writer import (
    pinned, prepare_model_dir, pyfunc_section, resolve_signature, save_input_example, write_model,
)
from flavors.policy import DEFAULT_POLICY, XGBOOST, LoadingPolicy
from flavors.signature import ModelSignature

FLAVOR_NAME = "xgboost"
LOADER_MODULE = "mlflow.xgboost"
EXTRA = "xgboost"
#: What MLflow assumes when ``model_class`` is missing (models saved before MLflow 1.22).
BOOSTER_CLASS = "xgboost.core.Booster"
FILE_FORMATS = ("ubj", "json", "xgb")
#: The scikit-learn-API methods a request may choose among (``params.predict_method``).
PREDICT_METHODS = ("predict", "predict_proba")
#: Keywords of ``predict`` the server sets itself; a request's params never override them.
_RESERVED = frozenset({"data", "X", "validate_features"})


class BoosterPredictor:
    """``booster.predict(DMatrix(data))`` with MLflow's feature-name check."""

    def __init__(self, booster: Any, xgb: Any) -> None:
        self.booster = booster
        self._xgb = xgb
        self._threads = _ForkSafeThreads(xgb)
        self._keywords = _keywords(booster.predict)
        self._names = booster.feature_names
        self.capabilities = Capabilities(row_independent=True, accepts_params=True, array_input=_array_input(
            booster.num_features(), self._names, booster.feature_types))

    def predict(self, data: Any, params: dict | None = None) -> Any:
        with self._threads():
            return self.booster.predict(self._dmatrix(data), validate_features=True, **self._keywords(params))

    def _dmatrix(self, data: Any) -> Any:
        """A matrix (the fast path's, in signature order) gets the booster's names, which it lacks."""
        if isinstance(data, np.ndarray) and self._names and data.ndim == 2 and data.shape[1] == len(self._names):
            return self._xgb.DMatrix(data, feature_names=list(self._names))
        return self._xgb.DMatrix(data)


class XGBModelPredictor:
    """A scikit-learn-API model's ``predict`` (or ``predict_proba`` when a request chooses it)."""

    def __init__(self, model: Any, xgb: Any) -> None:
        self.model = model
        self._threads = _ForkSafeThreads(xgb)
        self._keywords = _keywords(model.predict)
        booster = model.get_booster()
        offered = tuple(name for name in PREDICT_METHODS if callable(getattr(model, name, None)))
        self.capabilities = Capabilities(
            row_independent=True, accepts_params=True, predict_methods=offered, array_input=_array_input(
                booster.num_features(), getattr(model, "feature_names_in_", None), booster.feature_types))

    def predict(self, data: Any, params: dict | None = None) -> Any:
        with self._threads():
            return self.model.predict(data, validate_features=True, **self._keywords(params))

    def predict_with(self, method: str, data: Any) -> Any:
        with self._threads():
            return getattr(self.model, method)(data, validate_features=True)


class _ForkSafeThreads:
    """One thread in the process that loaded the model, XGBoost's default elsewhere (see the module
    docstring): call it for the context a prediction runs in."""

    def __init__(self, xgb: Any) -> None:
        self._xgb = xgb
        self._loaded_in = os.getpid()

    def __call__(self) -> contextlib.AbstractContextManager:
        return self._xgb.config_context(nthread=1) if os.getpid() == self._loaded_in else contextlib.nullcontext()


def _array_input(n_features: int, names: Any, types: list[str] | None) -> ArrayInput | None:
    """Numeric features: a matrix in the model's feature order predicts as the DataFrame."""
    if types and any(kind == "c" for kind in types):
        return None  # categorical: the DataFrame's categories, not numbers
    named = names is not None and len(names) > 0
    return ArrayInput(n_features, tuple(str(name) for name in names) if named else None)


def _keywords(predict: Any) -> Callable[[dict | None], dict]:
    """A filter of params to those ``predict`` takes as keywords, as MLflow's wrapper filters them."""
    accepted = set(inspect.signature(predict).parameters) - _RESERVED
    return lambda params: {name: value for name, value in (params or {}).items() if name in accepted}


class XGBoostFlavor:
    name = FLAVOR_NAME
    loader_modules = (LOADER_MODULE,)

    def shared_modules(self, metadata: ModelMetadata) -> tuple[str, ...]:
        return ("xgboost",)

    def model_format(self, metadata: ModelMetadata) -> str:
        """Always XGBoost's own file: MLflow never pickles an XGBoost model."""
        return XGBOOST

    def load(self, metadata: ModelMetadata,
             policy: LoadingPolicy = DEFAULT_POLICY) -> BoosterPredictor | XGBModelPredictor:
        conf = metadata.flavors.get(FLAVOR_NAME) or {}
        path = metadata.data_path(FLAVOR_NAME)
        policy.require(XGBOOST, path)
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        xgb = import_framework("xgboost", EXTRA, path)
        with xgb.config_context(nthread=1):  # fork safety, see the module docstring
            model = _load_native(xgb, path, conf.get("model_class") or BOOSTER_CLASS)
            _place_on(model, policy.device, path)
        return _predictor(model, xgb)


def _predictor(model: Any, xgb: Any) -> BoosterPredictor | XGBModelPredictor:
    return BoosterPredictor(model, xgb) if isinstance(model, xgb.Booster) else XGBModelPredictor(model, xgb)


def _load_native(xgb: Any, path: Path, model_class: str) -> Any:
    """``model_class().load_model(path)``, for XGBoost's own model classes only."""
    module, _, name = model_class.rpartition(".")
    kind = None
    if module.split(".")[0] == "xgboost":
        try:
            kind = getattr(importlib.import_module(module), name, None)
        except ImportError:
            kind = None
    if not (isinstance(kind, type) and issubclass(kind, (xgb.Booster, xgb.XGBModel))):
        raise ModelLoadError(f"{path}: model_class {model_class!r} in MLmodel is not an XGBoost model class")
    model = kind()
    try:
        model.load_model(path)
    except Exception as exc:  # xgboost.core.XGBoostError and friends
        raise ModelLoadError(f"could not load XGBoost model {path}: {type(exc).__name__}: {exc}") from exc
    return model


def _place_on(model: Any, device: str, path: Path) -> None:
    """Predict on ``device``; XGBoost silently falls back to the CPU, so a CUDA request is checked."""
    if device == "cpu":
        return
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    with warnings.catch_warnings():  # "No visible GPU is found": answered by the error below
        warnings.simplefilter("ignore")
        booster.set_param({"device": device})
        actual = json.loads(booster.save_config())["learner"]["generic_param"]["device"]
    if not actual.startswith("cuda"):
        raise ModelLoadError(f"{path}: device {device} was asked for but XGBoost finds no usable GPU "
                             f"(it would run on {actual}); use --device cpu")
    if hasattr(model, "set_params"):
        model.set_params(device=device)


def save_model(
    xgb_model: Any,
    path: str | Path,
    *,
    model_format: str = "ubj",
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    metadata: dict | None = None,
) -> ModelMetadata:
    """Save a Booster or scikit-learn-API XGBoost model as MLflow does: ``model.<model_format>``
    (``ubj`` by default, ``json`` or ``xgb``) in XGBoost's own format, with its ``model_class``.

    Without a ``signature``, one is inferred from ``input_example`` and the model's answer to it,
    as MLflow does; ``signature=False`` saves none.
    """
    if model_format not in FILE_FORMATS:
        raise ValueError(f"model_format must be one of {FILE_FORMATS}, got {model_format!r}")
    import xgboost as xgb

    model_dir = prepare_model_dir(path)
    model_file = f"model.{model_format}"
    xgb_model.save_model(str(model_dir / model_file))
    example_info = save_input_example(model_dir, input_example)
    predictor = _predictor(xgb_model, xgb)
    model_class = f"{type(xgb_model).__module__}.{type(xgb_model).__qualname__}"
    conf = {"code": None, "data": model_file, "model_class": model_class, "model_format": model_format,
            "xgb_version": xgb.__version__}
    return write_model(
        model_dir,
        {"python_function": pyfunc_section(LOADER_MODULE, data=model_file), FLAVOR_NAME: conf},
        requirements=pinned("xgboost") if pip_requirements is None else list(pip_requirements),
        signature=resolve_signature(signature, input_example, predictor.predict),
        example_info=example_info,
        metadata=metadata,
    )

