"""Keras 3 models (``loader_module: mlflow.keras``): loading and saving.

Layout (``mlflow.keras.save_model``, MLflow 2.11+ and 3.x): ``data/model.keras`` (Keras 3's zip of config
and weights), ``data/keras_module.txt`` (``keras``), and in ``MLmodel`` the flavor's ``keras_backend``,
``keras_version`` and ``save_exported_model``. Other layouts need TensorFlow, which this flavor does not
use: ``save_exported_model: true`` (a TF SavedModel), Keras 2 models (no ``keras_backend``; ``h5`` or
SavedModel under ``tensorflow.keras``), and ``loader_module: mlflow.tensorflow``: each is refused in one
line saying so.

Backend. The model loads on the backend recorded in ``keras_backend``: Keras reads ``KERAS_BACKEND`` once,
when first imported, so loading sets it then (MLflow ignores the recorded backend, and without TensorFlow
fails unless the environment happens to name one). Keras cannot switch backends in a process: a model of
another backend than the one already imported is refused, so all Keras models of one server share a backend.

Safety: ``keras.saving.load_model(..., safe_mode=True)`` rebuilds the model from Keras' own classes and
imports nothing outside the Keras packages; a model with a ``Lambda`` layer (marshalled Python code) or
custom classes is refused with Keras' reason.

Inputs and outputs are MLflow's (``KerasModelWrapper``): a DataFrame's ``values`` go in and the answer
is a DataFrame (columns 0..n-1, the frame's index); a tensor-signature input (array, or dict of named
arrays for several inputs) answers numpy arrays. The model is called directly on slices of 32 rows, the
slices ``model.predict`` makes by default, so the numbers are ``model.predict``'s, without the progress
bar (MLflow prints one per call) or the trainer state ``predict`` keeps on the model across threads.

Capabilities, measured rather than assumed:

* ``row_independent``: usual inference layers treat rows separately, but a model may mix them. The
  saved input example (two rows or more) is predicted batched and row by row at load: equal within
  float32 rounding (matrix kernels may round a row differently in another batch size) → True; no usable
  example → False.
* ``array_input``: with a signature of double columns the model gets exactly the float matrix of their
  values, so the numeric fast path's matrix predicts the same (and still answers a DataFrame).
* No ``predict_methods``: a Keras model has one inference call (a classifier's probabilities are its
  output; labels are the client's argmax).

Device (torch backend): Keras picks CUDA by itself when available; the model is placed on and run on
``policy.device`` instead (``cpu`` by default), an unavailable device refusing the load. Other backends
run on CPU only. Torch runs one thread per worker unless ``OMP_NUM_THREADS`` is set: workers have a
core each, and a pool used before the fork (a server loads its model in the master) hangs in the workers.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from flavors.base import ArrayInput, Capabilities, import_framework
from flavors.errors import ModelLoadError
from flavors.measured import double_columns, example_input, rows_independent
from flavors.mlmodel import ModelMetadata
from flavors.model_writer import (
    pinned, prepare_model_dir, pyfunc_section, resolve_signature, save_input_example, write_model,
)
from flavors.policy import DEFAULT_POLICY, KERAS, LoadingPolicy
from flavors.signature import ModelSignature

FLAVOR_NAME = "keras"
LOADER_MODULE = "mlflow.keras"
#: What ``mlflow.tensorflow`` writes (tf.keras and tf.Module SavedModels): refused, it needs TensorFlow.
TENSORFLOW_LOADER_MODULE = "mlflow.tensorflow"
EXTRA = "keras"
DATA_DIR = "data"
MODEL_FILE = "model.keras"
KERAS_MODULE_FILE = "keras_module.txt"
#: ``model.predict``'s default batch size: slices of this many rows give its numbers.
BATCH_SIZE = 32
#: Keras backends and the module each needs (numpy needs nothing more).
BACKEND_MODULES = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow", "openvino": "openvino", "numpy": None}
_RTOL, _ATOL = 1e-5, 1e-6  # float32 rounding, for the row-independence probe


class KerasPredictor:
    """A Keras model called as MLflow's pyfunc calls it (see the module docstring)."""

    def __init__(self, model: Any, keras: Any, scope: Callable[[], Any], frame_answer: bool) -> None:
        self.model = model
        self._keras = keras
        self._scope = scope
        self._frame_answer = frame_answer  # a float matrix stands for a DataFrame (fast path)
        self.capabilities = Capabilities()

    def predict(self, data: Any, params: dict | None = None) -> Any:
        """A DataFrame (or the fast path's matrix of one) answers a DataFrame; tensors answer arrays."""
        if isinstance(data, pd.DataFrame):
            return pd.DataFrame(self.forward(data.values), index=data.index)
        answer = self.forward(data)
        return pd.DataFrame(answer) if self._frame_answer and isinstance(data, np.ndarray) else answer

    def forward(self, data: Any) -> Any:
        """The model's output (numpy) for an array, dict or list of arrays, in ``model.predict``'s slices."""
        tree = self._keras.tree
        rows = len(tree.flatten(data)[0])
        with self._scope():
            parts = [tree.map_structure(self._keras.ops.convert_to_numpy,
                                        self.model(tree.map_structure(lambda a: a[i:i + BATCH_SIZE], data),
                                                   training=False))
                     for i in range(0, max(rows, 1), BATCH_SIZE)]
        return tree.map_structure(lambda *slices: np.concatenate(slices), *parts)


class KerasFlavor:
    name = FLAVOR_NAME
    loader_modules = (LOADER_MODULE, TENSORFLOW_LOADER_MODULE)

    def shared_modules(self, metadata: ModelMetadata) -> tuple[str, ...]:
        """The backend's framework (torch: most of the import time). Not keras itself: importing it
        before the backend is chosen from the model would fix the wrong one."""
        backend_module = BACKEND_MODULES.get(_keras_conf(metadata).get("keras_backend"))
        return (backend_module,) if backend_module in ("torch", "jax") else ()

    def model_format(self, metadata: ModelMetadata) -> str:
        """``keras`` (a Keras 3 archive); layouts needing TensorFlow are refused here already."""
        _keras_conf(metadata)
        return KERAS

    def load(self, metadata: ModelMetadata, policy: LoadingPolicy = DEFAULT_POLICY) -> KerasPredictor:
        conf = _keras_conf(metadata)
        path = metadata.path / (conf.get("data") or DATA_DIR) / MODEL_FILE
        policy.require(KERAS, path)
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        backend = conf["keras_backend"]
        keras = _import_keras(backend, path)
        scope = _device_scope(keras, backend, policy.device, path)
        with scope():
            model = _read(keras, path)
        columns = double_columns(metadata.signature.inputs if metadata.signature else None)
        predictor = KerasPredictor(model, keras, scope, frame_answer=columns is not None)
        predictor.capabilities = Capabilities(
            row_independent=rows_independent(predictor.forward, example_input(metadata, np.float64), _RTOL, _ATOL),
            array_input=ArrayInput(len(columns), columns) if columns else None)
        return predictor


def _keras_conf(metadata: ModelMetadata) -> dict:
    """The ``keras`` flavor section of a layout this flavor reads; a one-line refusal for the others."""
    pyfunc = metadata.pyfunc_conf or {}
    needs_tf = "needs TensorFlow, which scoring-server does not load: re-save the model with Keras 3 " \
               "(mlflow.keras.save_model, save_exported_model=False) on a torch or jax backend"
    if pyfunc.get("loader_module") == TENSORFLOW_LOADER_MODULE:
        raise ModelLoadError(f"{metadata.path} was saved by mlflow.tensorflow (SavedModel or tf.keras), which {needs_tf}")
    conf = metadata.flavors.get(FLAVOR_NAME) or {}
    if conf.get("save_exported_model"):
        raise ModelLoadError(f"{metadata.path} is a Keras model exported as a TF SavedModel "
                             f"(save_exported_model: true), which {needs_tf}")
    if not conf.get("keras_backend"):
        raise ModelLoadError(f"{metadata.mlmodel_path} records no keras_backend: a Keras 2 model "
                             f"(keras_version {conf.get('keras_version')}), which {needs_tf}")
    return conf


def _import_keras(backend: str, path: Path) -> Any:
    """Keras on ``backend``: set before Keras' first import; refused if it was imported with another."""
    if backend not in BACKEND_MODULES:
        raise ModelLoadError(f"{path}: unknown keras_backend {backend!r}; Keras 3 has {', '.join(BACKEND_MODULES)}")
    backend_module = BACKEND_MODULES[backend]
    if backend_module == "torch":
        import_framework("torch", EXTRA, path)
    elif backend_module is not None and importlib.util.find_spec(backend_module) is None:
        raise ModelLoadError(f"{path} was saved on the Keras backend {backend!r}, which needs {backend_module}: "
                             f"pip install {backend_module} (scoring-server[{EXTRA}] installs torch)")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend  # Keras reads it once, at its first import
    keras = import_framework("keras", EXTRA, path)
    active = keras.backend.backend()
    if active != backend:
        raise ModelLoadError(
            f"{path} was saved on the Keras backend {backend!r}, but this process already runs Keras on "
            f"{active!r} (Keras cannot switch backends): serve models of different backends from different servers")
    return keras


def _device_scope(keras: Any, backend: str, device: str, path: Path) -> Callable[[], Any]:
    """A context for loading and calling: the policy's torch device, without autograd; CPU elsewhere."""
    if backend != "torch":
        if device != "cpu":
            raise ModelLoadError(f"{path}: device {device!r} is supported for Keras models on the torch backend only, "
                                 f"this one is on {backend!r}")
        return contextlib.nullcontext
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        # One thread a worker (each has its core), as flavors/pytorch.py; and torch's thread pool, once
        # used by a server's master (the row probe at load), deadlocks the workers it forks.
        torch.set_num_threads(1)
    if device != "cpu":
        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ModelLoadError(f"{path}: device {device!r} asked for, but torch sees "
                                 f"{torch.cuda.device_count()} CUDA device(s) (torch {torch.__version__})")

    @contextlib.contextmanager
    def scope():
        with keras.device(device), torch.no_grad():
            yield

    return scope


def _read(keras: Any, path: Path) -> Any:
    """``load_model`` in safe mode (no code from the file); not compiled (serving never trains)."""
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        unsafe = " (Keras' safe mode refuses code stored in the model, e.g. Lambda layers; " \
                 "scoring-server never loads it)" if "safe_mode" in str(exc) else ""
        raise ModelLoadError(f"could not load Keras model {path}{unsafe}: {type(exc).__name__}: {exc}") from exc


def save_model(
    keras_model: Any,
    path: str | Path,
    *,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    metadata: dict | None = None,
) -> ModelMetadata:
    """Save a Keras 3 model as ``mlflow.keras.save_model`` does (``data/model.keras``, the backend recorded).

    Without a ``signature``, one is inferred from ``input_example`` (a DataFrame gives a column signature,
    an array a tensor one) and the model's answer to it; ``signature=False`` saves none. MLflow's own save
    accepts only tensor signatures and infers none; its loader takes column signatures too.
    """
    import keras  # the caller built the model with it: its backend is already chosen

    model_dir = prepare_model_dir(path)
    data_dir = model_dir / DATA_DIR
    data_dir.mkdir()
    (data_dir / KERAS_MODULE_FILE).write_text("keras", encoding="utf-8")
    keras_model.save(data_dir / MODEL_FILE)
    backend = keras.backend.backend()
    example_info = save_input_example(model_dir, input_example)
    conf = {"data": DATA_DIR, "keras_backend": backend, "keras_version": keras.__version__,
            "save_exported_model": False}
    predictor = KerasPredictor(keras_model, keras, contextlib.nullcontext, frame_answer=False)  # where it lives
    backend_module = BACKEND_MODULES.get(backend)
    # Without the local label (+cpu), as MLflow pins torch: it installs from PyPI.
    requirements = [pin.split("+")[0] for pin in pinned("keras", "numpy", *filter(None, [backend_module]))]
    return write_model(
        model_dir,
        {"python_function": pyfunc_section(LOADER_MODULE), FLAVOR_NAME: conf},
        requirements=requirements if pip_requirements is None else list(pip_requirements),
        signature=resolve_signature(signature, input_example, lambda data, params: predictor.predict(data)),
        example_info=example_info,
        metadata=metadata,
    )
