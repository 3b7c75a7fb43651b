"""LightGBM models (``loader_module: mlflow.lightgbm``): loading and saving.

``model_class`` decides the file, not ``serialization_format``: MLflow stores a
``lightgbm.basic.Booster`` as LightGBM's own text model (``model.lgb``) even though its MLmodel
says ``serialization_format: skops`` (MLflow's default for every class); a scikit-learn-API model
(``LGBMClassifier``, ``LGBMRegressor``, ...) is ``model.skops`` (MLflow 3's default) or a
(cloud)pickle ``model.pkl``, loaded exactly as the sklearn flavor loads them.

A skops file holds LightGBM types skops does not trust by default, and MLflow lists them in
``skops_trusted_types`` (:data:`MLFLOW_SKOPS_TRUSTED_TYPES`); as for scikit-learn models, the
loading policy must grant every one of them (``--skops-trusted-types``), or the model is refused.

As MLflow's pyfunc, ``predict`` ignores params. Trees score each row alone (row-independent); a
float matrix predicts as the DataFrame of the model's feature columns (a Booster reads columns by
position), except for models trained with pandas categorical columns, whose DataFrame categories
are mapped to codes by LightGBM: those get no array input. LightGBM predicts on the CPU only, so the
policy's ``device`` is not used (as for scikit-learn).

Fork safety: the server loads a model in its master and forks the workers. LightGBM's OpenMP
runtime (GNU libgomp) does not survive a fork once it has started its threads, which reading a
model already does: a worker's first prediction then hangs forever. So the process that loads a
model limits LightGBM to one thread (``LGBM_SetMaxThreads``, process-wide, from LightGBM's C API)
and any other process (a forked worker) lifts the limit before its first prediction.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from flavors.base import ArrayInput, Capabilities, import_framework
from flavors.errors import ModelLoadError
from flavors.mlmodel import ModelMetadata
from flavors.model_writer import (
    pinned, prepare_model_dir, pyfunc_section, resolve_signature, save_input_example, write_model,
)
from flavors.policy import DEFAULT_POLICY, LIGHTGBM, SKOPS, LoadingPolicy
from flavors.signature import ModelSignature
from flavors.sklearn import SERIALIZATION_FORMATS, SklearnPredictor, load_estimator, serialize_estimator

FLAVOR_NAME = "lightgbm"
LOADER_MODULE = "mlflow.lightgbm"
EXTRA = "lightgbm"
#: The class MLflow stores natively; also its assumption when ``model_class`` is missing.
BOOSTER_CLASS = "lightgbm.basic.Booster"
#: What ``mlflow.lightgbm.save_model`` lists in ``skops_trusted_types`` (for every model class).
#: An LGBMClassifier's skops file needs the first three; MLflow lists the fourth too, so a
#: server must grant all four to load MLflow's skops LightGBM models.
MLFLOW_SKOPS_TRUSTED_TYPES = ("collections.OrderedDict", "lightgbm.basic.Booster",
                              "lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor")


class _Threads:
    """LightGBM's process-wide thread limit: one thread where models are loaded, the default in
    the processes forked from there (see the module docstring)."""

    limited_in: int | None = None

    @classmethod
    def limit_for_loading(cls, lgb: Any) -> None:
        cls._set(lgb, 1)
        cls.limited_in = os.getpid()

    @classmethod
    def lift_after_fork(cls, lgb: Any) -> None:
        if cls.limited_in is not None and cls.limited_in != os.getpid():
            cls._set(lgb, -1)  # LightGBM's default: OpenMP's
            cls.limited_in = None

    @staticmethod
    def _set(lgb: Any, threads: int) -> None:
        lgb.basic._safe_call(lgb.basic._LIB.LGBM_SetMaxThreads(ctypes.c_int(threads)))


class BoosterPredictor:
    """``booster.predict(data)``: what MLflow's pyfunc answers for a Booster."""

    def __init__(self, booster: Any, lgb: Any) -> None:
        self.booster = booster
        self._lgb = lgb
        self.capabilities = Capabilities(row_independent=True, array_input=_array_input(
            booster, booster.num_feature(), booster.feature_name()))

    def predict(self, data: Any, params: dict | None = None) -> Any:
        _Threads.lift_after_fork(self._lgb)
        return self.booster.predict(data)


class SklearnAPIPredictor(SklearnPredictor):
    """The sklearn flavor's predictor (``predict``, or ``predict_proba``... when a request chooses
    it), with the array input its LightGBM model allows."""

    def __init__(self, model: Any, lgb: Any) -> None:
        super().__init__(model, "predict")
        self._lgb = lgb
        booster = getattr(model, "booster_", None)
        if booster is not None:
            array_input = _array_input(booster, model.n_features_in_, getattr(model, "feature_names_in_", None))
            self.capabilities = dataclasses.replace(self.capabilities, array_input=array_input)

    def predict(self, data: Any, params: dict | None = None) -> Any:
        _Threads.lift_after_fork(self._lgb)
        return super().predict(data)

    def predict_with(self, method: str, data: Any) -> Any:
        _Threads.lift_after_fork(self._lgb)
        return super().predict_with(method, data)


def _array_input(booster: Any, n_features: int, names: Any) -> ArrayInput | None:
    if booster.pandas_categorical:  # category codes come from the DataFrame's categories
        return None
    named = names is not None and len(names) > 0
    return ArrayInput(n_features, tuple(str(name) for name in names) if named else None)


class LightGBMFlavor:
    name = FLAVOR_NAME
    loader_modules = (LOADER_MODULE,)

    def shared_modules(self, metadata: ModelMetadata) -> tuple[str, ...]:
        return ("lightgbm", "flavors.skops_io") if self.model_format(metadata) == SKOPS else ("lightgbm",)

    def model_format(self, metadata: ModelMetadata) -> str:
        """``lightgbm`` for a Booster (whatever ``serialization_format`` says), else the declared
        format (``cloudpickle`` when none, as MLflow assumes)."""
        conf = metadata.flavors.get(FLAVOR_NAME) or {}
        if (conf.get("model_class") or BOOSTER_CLASS) == BOOSTER_CLASS:
            return LIGHTGBM
        return conf.get("serialization_format") or "cloudpickle"

    def load(self, metadata: ModelMetadata,
             policy: LoadingPolicy = DEFAULT_POLICY) -> BoosterPredictor | SklearnAPIPredictor:
        conf = metadata.flavors.get(FLAVOR_NAME) or {}
        path = metadata.data_path(FLAVOR_NAME)
        model_format = self.model_format(metadata)
        if model_format not in (LIGHTGBM, *SERIALIZATION_FORMATS):
            raise ModelLoadError(f"{path}: unknown serialization_format {model_format!r}; expected one of "
                                 f"{SERIALIZATION_FORMATS}")
        policy.require(model_format, path)
        lgb = import_framework("lightgbm", EXTRA, path)
        _Threads.limit_for_loading(lgb)
        if model_format == LIGHTGBM:
            return BoosterPredictor(_load_booster(lgb, path), lgb)
        model = load_estimator(path, model_format, conf.get("skops_trusted_types"), policy)
        if not callable(getattr(model, "predict", None)):
            raise ModelLoadError(f"{path}: {type(model).__name__} has no predict method")
        return SklearnAPIPredictor(model, lgb)


def _load_booster(lgb: Any, path: Path) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        return lgb.Booster(model_file=str(path))
    except Exception as exc:  # lightgbm.basic.LightGBMError
        raise ModelLoadError(f"could not load LightGBM model {path}: {type(exc).__name__}: {exc}") from exc


def save_model(
    lgb_model: Any,
    path: str | Path,
    *,
    serialization_format: str = SKOPS,
    skops_trusted_types: list[str] | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    metadata: dict | None = None,
) -> ModelMetadata:
    """Save a LightGBM model as MLflow 3 does: a Booster as ``model.lgb`` (LightGBM's text model),
    a scikit-learn-API model with ``serialization_format`` (``skops`` by default: ``model.skops``;
    ``cloudpickle``/``pickle``: ``model.pkl``).

    For skops, ``skops_trusted_types`` adds to :data:`MLFLOW_SKOPS_TRUSTED_TYPES`, which MLmodel
    lists as MLflow does (loading never trusts that list: the loader's policy must grant it). Without
    a ``signature``, one is inferred from ``input_example`` and the model's answer to it.
    """
    import lightgbm as lgb

    if serialization_format not in SERIALIZATION_FORMATS:
        raise ValueError(f"serialization_format must be one of {SERIALIZATION_FORMATS}, got {serialization_format!r}")
    is_booster = isinstance(lgb_model, lgb.Booster)
    if serialization_format == SKOPS:
        skops_trusted_types = sorted(set(MLFLOW_SKOPS_TRUSTED_TYPES) | set(skops_trusted_types or ()))
    model_dir = prepare_model_dir(path)
    model_file = "model.lgb" if is_booster else ("model.skops" if serialization_format == SKOPS else "model.pkl")
    if is_booster:
        lgb_model.save_model(str(model_dir / model_file))
    else:
        (model_dir / model_file).write_bytes(serialize_estimator(lgb_model, serialization_format, skops_trusted_types))
    example_info = save_input_example(model_dir, input_example)
    predictor = BoosterPredictor(lgb_model, lgb) if is_booster else SklearnAPIPredictor(lgb_model, lgb)
    conf = {"code": None, "data": model_file, "lgb_version": version("lightgbm"),
            "model_class": f"{type(lgb_model).__module__}.{type(lgb_model).__qualname__}",
            "serialization_format": serialization_format, "skops_trusted_types": skops_trusted_types}
    serializer = () if is_booster or serialization_format == "pickle" else (serialization_format,)
    return write_model(
        model_dir,
        {"python_function": pyfunc_section(LOADER_MODULE, data=model_file), FLAVOR_NAME: conf},
        requirements=pinned("lightgbm", *serializer) if pip_requirements is None else list(pip_requirements),
        signature=resolve_signature(signature, input_example, predictor.predict),
        example_info=example_info,
        metadata=metadata,
    )
