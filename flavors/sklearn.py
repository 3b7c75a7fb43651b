"""scikit-learn models (``loader_module: mlflow.sklearn``): loading and saving.

Predictions from a float matrix instead of a DataFrame (the fast path) rely on one warnings
filter installed at import, see below.
"""
from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import cloudpickle
import numpy as np
import pandas as pd

from flavors.base import ArrayInput, Capabilities
from flavors.code_paths import copy_code_paths, model_code
from flavors.errors import ModelLoadError, UntrustedSkopsTypesError, UntrustedTypesError
from flavors.mlflow_aliases import load_pickle
from flavors.mlmodel import ModelMetadata
from flavors.policy import DEFAULT_POLICY, SKOPS, LoadingPolicy
from flavors.model_writer import (
    pinned, prepare_model_dir, pyfunc_section, resolve_signature, save_input_example, write_model,
)
from flavors.signature import ModelSignature

FLAVOR_NAME = "sklearn"
LOADER_MODULE = "mlflow.sklearn"
SERIALIZATION_FORMATS = ("cloudpickle", "pickle", "skops")

# Given a float matrix (Capabilities.array_input), a model fitted on a DataFrame warns on every
# call that X has no feature names; the values are in the model's column order (the promise is
# checked against the column names before a matrix is used), so the warning says nothing. It
# is silenced by this one filter, installed when this module is imported, for that exact
# scikit-learn message only: not per load (filters would pile up) and not per call, because
# warnings.catch_warnings() swaps the process-wide filter list and is not thread-safe, and
# wrapping the matrix in a DataFrame again costs several times the prediction itself. A
# process using this module thus never sees that warning, whoever calls scikit-learn.
warnings.filterwarnings(
    "ignore",
    message=r"X does not have valid feature names, but \w+ was fitted with feature names",
    category=UserWarning,
    module=r"sklearn\.",
)


#: The methods of an estimator a request may choose (``params.predict_method``), where it has them.
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")


class SklearnPredictor:
    """Calls one method (``predict``, ``predict_proba``, ...) of a fitted estimator, or another of
    :data:`PREDICT_METHODS` that a request chooses.

    Row-independent, takes no params, and takes a float matrix when :func:`_array_input` allows.
    """

    def __init__(self, estimator: Any, method: str) -> None:
        self.estimator = estimator
        self._predict = getattr(estimator, method)
        offered = tuple(name for name in PREDICT_METHODS if callable(getattr(estimator, name, None)))
        self.capabilities = Capabilities(row_independent=True, accepts_params=False,
                                         array_input=_array_input(estimator), predict_methods=offered)

    def predict(self, data: Any, params: dict | None = None) -> Any:
        """``estimator.<method>(data)``; a dict of columns becomes a DataFrame; no ``params``."""
        return self._predict(_table(data))

    def predict_with(self, method: str, data: Any) -> Any:
        """``estimator.<method>(data)`` for one of the offered :data:`PREDICT_METHODS`."""
        return getattr(self.estimator, method)(_table(data))


def _table(data: Any) -> Any:
    """A dict of columns as a DataFrame; anything else as it is."""
    if isinstance(data, dict):
        return pd.DataFrame({name: np.atleast_1d(column) for name, column in data.items()})
    return data


# scikit-learn estimators that select or transform columns by name, or run user code on the
# input: they may answer differently (or fail) when given an array instead of a DataFrame.
_NAME_DEPENDENT = {"ColumnTransformer", "FunctionTransformer", "TransformedTargetRegressor"}


def _array_input(estimator: Any) -> ArrayInput | None:
    """The columns for which a float matrix is as good as a DataFrame, for plain scikit-learn models.

    A model fitted on a DataFrame checks the column names of a DataFrame and converts it to an
    array; given the same values as an array it computes the same thing (and would only warn
    that the names are missing, which the module-level filter above silences).
    """
    if not _plain_sklearn(estimator):
        return None
    nested = [value for value in estimator.get_params(deep=True).values() if hasattr(value, "fit")]
    if not all(_plain_sklearn(part) for part in nested):
        return None
    n_features = getattr(estimator, "n_features_in_", None)
    if not isinstance(n_features, int):
        return None
    names = getattr(estimator, "feature_names_in_", None)
    return ArrayInput(n_features, tuple(str(n) for n in names) if names is not None else None)


def _plain_sklearn(estimator: Any) -> bool:
    kind = type(estimator)
    return kind.__module__.startswith("sklearn.") and kind.__name__ not in _NAME_DEPENDENT


class SklearnFlavor:
    name = FLAVOR_NAME
    loader_modules = (LOADER_MODULE,)

    def shared_modules(self, metadata: ModelMetadata) -> tuple[str, ...]:
        """What loading this model imports (scikit-learn; skops for skops files: ~1 s together)."""
        conf = metadata.flavors.get(FLAVOR_NAME) or {}
        return ("sklearn", "flavors.skops_io") if conf.get("serialization_format") == "skops" else ("sklearn",)

    def model_format(self, metadata: ModelMetadata) -> str:
        """The format of the model file, as MLmodel declares it (``pickle`` when it does not)."""
        conf = metadata.flavors.get(FLAVOR_NAME) or {}
        return conf.get("serialization_format") or "pickle"

    def load(self, metadata: ModelMetadata, policy: LoadingPolicy = DEFAULT_POLICY) -> SklearnPredictor:
        pyfunc = metadata.pyfunc_conf or {}
        conf = metadata.flavors.get(FLAVOR_NAME) or {}
        # Early MLflow versions wrote python_function "data" instead of "model_path".
        model_file = conf.get("pickled_model") or pyfunc.get("model_path") or pyfunc.get("data")
        if not model_file:
            raise ModelLoadError(f"{metadata.mlmodel_path} does not name the sklearn model file")
        path = metadata.path / model_file
        serialization_format = self.model_format(metadata)
        if serialization_format not in SERIALIZATION_FORMATS:
            raise ModelLoadError(
                f"{path}: unknown serialization_format {serialization_format!r}; expected one of {SERIALIZATION_FORMATS}"
            )
        policy.require(serialization_format, path)  # before the code directory is importable
        # Classes and functions of the model's code directory are bound while unpickling.
        with model_code(metadata.path, conf.get("code") or pyfunc.get("code")):
            estimator = load_estimator(path, serialization_format, conf.get("skops_trusted_types"), policy)
        method = pyfunc.get("predict_fn") or "predict"
        if not callable(getattr(estimator, method, None)):
            raise ModelLoadError(f"{path}: {type(estimator).__name__} has no method {method!r} (predict_fn in MLmodel)")
        return SklearnPredictor(estimator, method)


def load_estimator(path: Path, serialization_format: str, declared_trusted: Any, policy: LoadingPolicy) -> Any:
    """An estimator from its skops or (cloud)pickle file, under ``policy`` (also LightGBM's models)."""
    policy.require(serialization_format, path)
    if serialization_format == SKOPS:
        return _load_skops(path, declared_trusted, policy.skops_trusted_types)
    return load_pickle(path)


def _load_skops(path: Path, declared_trusted: Any, granted: frozenset[str]) -> Any:
    """Load a skops file trusting only skops' defaults and the types the policy ``granted``.

    ``declared_trusted`` (MLmodel's ``skops_trusted_types``, written by whoever saved the model)
    is never trusted: types it lists that were not granted refuse the model, so that a model
    asking for more trust than the operator gave is noticed rather than half-loaded.
    """
    from flavors.skops_io import skops_io  # slow to import; only skops models need it

    if declared_trusted is not None and not (
            isinstance(declared_trusted, list) and all(isinstance(t, str) for t in declared_trusted)):
        raise ModelLoadError(f"{path}: skops_trusted_types in MLmodel must be a list of type names")
    not_granted = set(declared_trusted or ()) - granted
    if not_granted:
        raise UntrustedTypesError(path, not_granted, listed_in_mlmodel=True)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        found = skops_io.get_untrusted_types(file=path)
        untrusted = set(found) - granted
        if untrusted:
            raise UntrustedTypesError(path, untrusted)
        return skops_io.load(path, trusted=sorted(found))  # every one of them granted
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"could not load skops file {path}: {type(exc).__name__}: {exc}") from exc


def save_model(
    sk_model: Any,
    path: str | Path,
    *,
    serialization_format: str = "cloudpickle",
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    predict_fn: str = "predict",
    skops_trusted_types: list[str] | None = None,
    code_paths: Iterable[str | Path] | None = None,
    metadata: dict | None = None,
    baseline_data: Any = None,
) -> ModelMetadata:
    """Save a fitted estimator as an MLflow-format model directory that MLflow can load too.

    Without a ``signature``, one is inferred from ``input_example`` (a DataFrame, array, dict or
    list, or a ``(data, params)`` pair) and the estimator's ``predict`` answer to it, as MLflow
    does; ``signature=False`` saves none. ``pip_requirements`` replaces the default requirements (the installed scikit-learn, numpy,
    pandas, scipy and the serializer). ``skops_trusted_types`` lists the non-default types a
    skops file contains, in MLmodel, as MLflow writes it: loading never trusts that list, the
    loader's :class:`~flavors.policy.LoadingPolicy` must grant them (and a model listing types
    it does not grant is refused). As in MLflow, a skops model needing types that are neither
    trusted by skops nor listed there is refused before anything is written. ``code_paths`` files/directories are copied into ``code/``.
    ``baseline_data`` (a DataFrame of training rows) adds the drift baseline (``baseline.json``).
    """
    if serialization_format not in SERIALIZATION_FORMATS:
        raise ValueError(f"serialization_format must be one of {SERIALIZATION_FORMATS}, got {serialization_format!r}")
    if not callable(getattr(sk_model, predict_fn, None)):
        raise ValueError(f"{type(sk_model).__name__} has no method {predict_fn!r}")
    serialized = serialize_estimator(sk_model, serialization_format, skops_trusted_types)
    model_dir = prepare_model_dir(path)
    model_file = "model.skops" if serialization_format == "skops" else "model.pkl"
    (model_dir / model_file).write_bytes(serialized)
    code = copy_code_paths(code_paths, model_dir)
    example_info = save_input_example(model_dir, input_example)
    pyfunc = pyfunc_section(LOADER_MODULE, model_path=model_file, predict_fn=predict_fn)
    if code:
        pyfunc["code"] = code
    sklearn_conf = {
        "code": code,
        "pickled_model": model_file,
        "serialization_format": serialization_format,
        "sklearn_version": version("scikit-learn"),
        "skops_trusted_types": skops_trusted_types,
    }
    serializer = () if serialization_format == "pickle" else (serialization_format,)
    saved = write_model(
        model_dir,
        {"python_function": pyfunc, FLAVOR_NAME: sklearn_conf},
        requirements=pinned("scikit-learn", "numpy", "pandas", "scipy", *serializer)
        if pip_requirements is None
        else list(pip_requirements),
        # MLflow infers the output from predict() whatever predict_fn is.
        signature=resolve_signature(signature, input_example, lambda data, params: sk_model.predict(data)),
        example_info=example_info,
        metadata=metadata,
    )
    if baseline_data is None:
        return saved
    from scoring_server.monitoring.baseline import save_baseline  # the server's path: signature, fast path

    save_baseline(model_dir, baseline_data)
    return saved


def serialize_estimator(sk_model: Any, serialization_format: str, skops_trusted_types: list[str] | None) -> bytes:
    """The estimator's file contents in ``serialization_format``; skops refuses types neither it nor
    ``skops_trusted_types`` trusts, as MLflow does (also LightGBM's models)."""
    if serialization_format != SKOPS:
        # The default protocol, as MLflow: cloudpickle's newest one may not load in older Pythons.
        return (cloudpickle if serialization_format == "cloudpickle" else pickle).dumps(
            sk_model, protocol=pickle.DEFAULT_PROTOCOL)
    from flavors.skops_io import skops_io

    serialized = skops_io.dumps(sk_model)
    untrusted = sorted(set(skops_io.get_untrusted_types(data=serialized)) - set(skops_trusted_types or ()))
    if untrusted:
        raise UntrustedSkopsTypesError(untrusted)
    return serialized
