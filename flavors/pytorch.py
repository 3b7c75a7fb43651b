"""PyTorch models (``loader_module: mlflow.pytorch``): loading and saving.

Layouts. ``MLmodel`` does not say how the module was stored; as in MLflow, the file present in the data
directory (``pytorch.model_data``, usually ``data/``) decides:

* ``model.pth`` + ``pickle_module_info.txt``: the whole module pickled by ``torch.save`` (MLflow < 3's
  default, ``serialization_format="pickle"`` since): format ``cloudpickle`` (``pickle`` when the info file
  names plain ``pickle``); classes it references may come from the model's ``code/`` directory.
* otherwise ``model.pt2``: a ``torch.export`` archive (MLflow 3's default), format ``torch-export``,
  read by ``torch.export.load`` without running code from the model's author.
* ``state_dict.pth`` alone is what ``mlflow.pytorch.save_state_dict`` writes: weights without the module
  (and without ``MLmodel``), not a model; refused with that explanation.

Inputs and outputs are MLflow's (``_PyTorchWrapper``): a DataFrame becomes a float32 tensor of its values
and the answer a DataFrame (columns 0..n-1); a tensor-signature input is the signature's numpy array, and
the answer a numpy array. Calls run under ``torch.inference_mode()``; pickled modules are put in
``eval()`` mode (an export is traced in the mode it was saved in).

Capabilities, measured rather than assumed:

* ``row_independent``: in eval mode the usual layers (Linear, convolutions, BatchNorm with its running
  statistics, dropout off) treat rows separately, but a module may mix the rows of a batch. The model's
  saved input example (two rows or more) is predicted batched and row by row at load: equal within
  float32 tolerance → True; no usable example → False (no adaptive batching).
* A ``torch.export`` saved with a one-row example has its batch dimension fixed at 1 (torch specialises
  size-1 dimensions; MLflow's own pyfunc then fails on more rows). Such a model is called row by row;
  it is declared not row-independent, since batching requests would only queue the same per-row calls.
* ``array_input``: when the signature is a list of double columns, the model gets a float matrix of them
  anyway, so the numeric fast path's matrix gives the same predictions.

Device: CPU by default (MLflow picks CUDA when available; a server should not change device on its own).
``policy.device`` ``cuda``/``cuda:N`` moves a pickled module there; an export can only run where its
weights were saved (as in MLflow). An unavailable device refuses the load.

Threads: each pre-forked worker already has a core; torch's default intra-op pool (one thread a core)
in every worker oversubscribes them. Measured on 2 cores (tiny MLP, 64 rows): 69 µs with 1 thread,
609 µs with 2. Loading thus sets 1 thread unless ``OMP_NUM_THREADS`` is set (which torch then follows).
"""
from __future__ import annotations

import importlib
import os
import pickle
import types
from pathlib import Path
from typing import Any, Literal

import cloudpickle
import numpy as np
import pandas as pd

from flavors.base import ArrayInput, Capabilities, import_framework
from flavors.code_paths import copy_code_paths, model_code
from flavors.errors import ModelLoadError
from flavors.measured import double_columns, example_input, rows_independent
from flavors.mlmodel import ModelMetadata
from flavors.model_writer import (
    pinned, prepare_model_dir, pyfunc_section, resolve_signature, save_input_example, write_model,
)
from flavors.policy import CLOUDPICKLE, DEFAULT_POLICY, PICKLE, TORCH_EXPORT, LoadingPolicy
from flavors.signature import ModelSignature

FLAVOR_NAME = "pytorch"
LOADER_MODULE = "mlflow.pytorch"
DATA_DIR = "data"
PICKLED_FILE = "model.pth"
EXPORTED_FILE = "model.pt2"
STATE_DICT_FILE = "state_dict.pth"
PICKLE_MODULE_INFO = "pickle_module_info.txt"
#: What MLflow writes in ``pickle_module_info.txt`` by default (cloudpickle's Pickler, pickle's Unpickler).
MLFLOW_PICKLE_MODULE = "mlflow.pytorch.pickle_module"
#: Pickle modules whose files the standard unpickler reads (cloudpickle writes ordinary pickles).
_STANDARD_UNPICKLING = {MLFLOW_PICKLE_MODULE: CLOUDPICKLE, "cloudpickle": CLOUDPICKLE, "pickle": PICKLE}
#: torch.save's pickle_module for our saves: cloudpickle's Pickler, pickle's Unpickler (MLflow's pickle_module).
_CLOUDPICKLE_MODULE = types.ModuleType("cloudpickle")
_CLOUDPICKLE_MODULE.Pickler, _CLOUDPICKLE_MODULE.Unpickler = cloudpickle.CloudPickler, pickle.Unpickler
#: Batched vs row-by-row predictions of the input example: float32 sums in another order differ a little.
_RTOL, _ATOL = 1e-4, 1e-5


class PyTorchPredictor:
    """Calls a module as MLflow's pyfunc does (see the module docstring for inputs, outputs, capabilities)."""

    def __init__(self, module: Any, device: Any, *, takes_frame: bool, one_row: bool) -> None:
        import torch  # already imported by the load

        self.module = module
        self._torch = torch
        self._device = device
        self._takes_frame = takes_frame  # a column signature: MLflow hands the module a DataFrame
        self.one_row = one_row  # the export fixed the batch dimension at 1
        self.capabilities = Capabilities()

    def predict(self, data: Any, params: dict | None = None) -> Any:
        """The module's answer to ``data``: a DataFrame for a frame (or a column signature), else an array."""
        output = self.forward(_as_array(data, self._takes_frame))
        if isinstance(data, pd.DataFrame):
            return pd.DataFrame(output, index=data.index)
        return pd.DataFrame(output) if self._takes_frame else output

    def forward(self, array: np.ndarray) -> np.ndarray:
        """The module on ``array`` (one row at a time when its export fixed the batch at 1)."""
        if self.one_row and len(array) != 1:
            return np.concatenate([self.forward(array[i:i + 1]) for i in range(len(array))])
        torch = self._torch
        with torch.inference_mode():
            output = self.module(torch.from_numpy(np.require(array, requirements=("C", "W"))).to(self._device))
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"Expected PyTorch model to output a single output tensor, but got output of type "
                            f"'{type(output)}'")
        return output.cpu().numpy()


def _as_array(data: Any, takes_frame: bool) -> np.ndarray:
    """MLflow's conversion: a frame (or the fast path's matrix of its columns) as float32 values."""
    if isinstance(data, pd.DataFrame):
        return data.to_numpy(dtype=np.float32)
    if isinstance(data, np.ndarray):
        return data.astype(np.float32) if takes_frame else data
    if isinstance(data, (list, dict)):
        raise TypeError("The PyTorch flavor does not support List or Dict input types. "
                        "Please use a pandas.DataFrame or a numpy.ndarray")
    raise TypeError("Input data should be pandas.DataFrame or numpy.ndarray")


class PyTorchFlavor:
    name = FLAVOR_NAME
    loader_modules = (LOADER_MODULE,)

    def shared_modules(self, metadata: ModelMetadata) -> tuple[str, ...]:
        """torch (a few seconds to import), shared by workers forked after it."""
        return ("torch",)

    def model_format(self, metadata: ModelMetadata) -> str:
        """``torch-export`` for ``model.pt2``; ``cloudpickle`` (or ``pickle``) for ``model.pth``."""
        return _layout(_data_dir(metadata))[0]

    def load(self, metadata: ModelMetadata, policy: LoadingPolicy = DEFAULT_POLICY) -> PyTorchPredictor:
        data_dir = _data_dir(metadata)
        model_format, path = _layout(data_dir)
        policy.require(model_format, path)
        torch = import_framework("torch", "pytorch", path)
        device = _device(torch, policy.device, path)
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(1)  # one worker a core: see the module docstring
        if model_format == TORCH_EXPORT:
            module, one_row = _load_export(torch, path, device)
        else:
            conf = metadata.flavors.get(FLAVOR_NAME) or {}
            with model_code(metadata.path, conf.get("code") or (metadata.pyfunc_conf or {}).get("code")):
                module = _load_pickled(torch, path, data_dir, device)
            one_row = False
        inputs = metadata.signature.inputs if metadata.signature else None
        columns = double_columns(inputs)
        predictor = PyTorchPredictor(module, device, takes_frame=inputs is not None and not inputs.is_tensor_spec,
                                     one_row=one_row)
        predictor.capabilities = Capabilities(
            row_independent=not one_row and rows_independent(predictor.forward, example_input(metadata, np.float32),
                                                               _RTOL, _ATOL),
            array_input=ArrayInput(len(columns), columns) if columns else None,
        )
        return predictor


def _data_dir(metadata: ModelMetadata) -> Path:
    conf = metadata.flavors.get(FLAVOR_NAME) or {}
    return metadata.path / (conf.get("model_data") or (metadata.pyfunc_conf or {}).get("data") or DATA_DIR)


def _layout(data_dir: Path) -> tuple[str, Path]:
    """(format, file) of the module in ``data_dir``: ``model.pth`` if present (as MLflow), else ``model.pt2``."""
    pickled, exported = data_dir / PICKLED_FILE, data_dir / EXPORTED_FILE
    if pickled.is_file():
        return _pickle_format(data_dir), pickled
    if exported.is_file():
        return TORCH_EXPORT, exported
    if (data_dir / STATE_DICT_FILE).is_file():
        raise ModelLoadError(f"{data_dir} holds only a state dict ({STATE_DICT_FILE}, written by "
                             "mlflow.pytorch.save_state_dict): weights without their module are not a servable model")
    raise ModelLoadError(f"no PyTorch model in {data_dir}: expected {PICKLED_FILE} or {EXPORTED_FILE}")


def _pickle_format(data_dir: Path) -> str:
    """The policy format of a pickled module: that of the pickle module MLflow recorded (cloudpickle's by default)."""
    return _STANDARD_UNPICKLING.get(_pickle_module_name(data_dir), CLOUDPICKLE)


def _pickle_module_name(data_dir: Path) -> str:
    info = data_dir / PICKLE_MODULE_INFO
    return info.read_text(encoding="utf-8").strip() if info.is_file() else MLFLOW_PICKLE_MODULE


def _device(torch: Any, device: str, path: Path) -> Any:
    """``torch.device(device)``; a CUDA device torch cannot use refuses the load."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelLoadError(f"{path}: device {device} asked for, but CUDA is not available to torch "
                                 f"{torch.__version__}")
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise ModelLoadError(f"{path}: device {device} asked for, but torch sees {torch.cuda.device_count()} "
                                 "CUDA device(s)")
    return torch.device(device)


def _load_export(torch: Any, path: Path, device: Any) -> tuple[Any, bool]:
    """The exported module, and whether its export fixed the batch dimension at 1."""
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelLoadError(f"could not load torch.export archive {path}: {type(exc).__name__}: {exc}") from exc
    module = program.module()
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.device.type != device.type:
            raise ModelLoadError(f"{path}: a torch.export model runs only on the device its weights were saved on "
                                 f"({tensor.device.type}), not {device}: save it from a module on {device.type}")
    return module, _batch_fixed_at_one(program)


def _batch_fixed_at_one(program: Any) -> bool:
    """Whether an exported input's first dimension is the constant 1 (not a symbolic size)."""
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    for spec in program.graph_signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            shape = placeholders[spec.arg.name].meta["val"].shape
            if len(shape) and isinstance(shape[0], int) and shape[0] == 1:
                return True
    return False


def _load_pickled(torch: Any, path: Path, data_dir: Path, device: Any) -> Any:
    """``torch.load`` of a whole pickled module (the policy allowed running its code), in eval mode on ``device``."""
    name = _pickle_module_name(data_dir)
    try:
        pickle_module = pickle if name in _STANDARD_UNPICKLING else importlib.import_module(name)
    except ImportError as exc:
        raise ModelLoadError(f"{path} was pickled with {name} ({data_dir / PICKLE_MODULE_INFO}), "
                             f"which is not installed: {exc}") from exc
    try:
        module = torch.load(str(path), map_location=device, pickle_module=pickle_module, weights_only=False)
    except Exception as exc:
        raise ModelLoadError(f"could not load PyTorch model {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"{path} holds a {type(module).__name__}, not a torch.nn.Module")
    return module.eval().to(device)


def save_model(
    pytorch_model: Any,
    path: str | Path,
    *,
    serialization_format: Literal["pt2", "pickle"] = "pt2",
    input_example: Any = None,
    signature: ModelSignature | Literal[False] | None = None,
    code_paths: list[str | Path] | None = None,
    pip_requirements: list[str] | None = None,
    metadata: dict | None = None,
) -> ModelMetadata:
    """Save a ``torch.nn.Module`` as MLflow 3.17 does, loadable by MLflow and by this package.

    ``pt2`` (the default, as MLflow's): ``torch.export`` of the module traced on ``input_example``, a numpy
    array (required); the signature, inferred from it, is tensor-based, and its ``-1`` dimensions are
    exported dynamic (``Dim.AUTO``; a one-row example fixes the batch at 1, as in MLflow). ``pickle``: the
    whole module by ``torch.save`` with cloudpickle (loading it runs code); its classes' files may be given
    as ``code_paths`` (copied to ``code/``). As in MLflow, the module is saved in the mode it is in: call
    ``eval()`` first (an export keeps that mode; a pickled module is put in eval mode when loaded).
    """
    import torch

    if serialization_format not in ("pt2", "pickle"):
        raise ValueError(f"serialization_format must be 'pt2' or 'pickle', got {serialization_format!r}")
    if not isinstance(pytorch_model, torch.nn.Module):
        raise TypeError("pytorch_model must be a torch.nn.Module")
    if serialization_format == "pt2" and not isinstance(input_example, np.ndarray):
        raise ValueError("serialization_format='pt2' needs input_example, a numpy array to trace the module with")
    wrapper = PyTorchPredictor(pytorch_model, torch.device("cpu"), takes_frame=False, one_row=False)
    signature = resolve_signature(signature, input_example, lambda data, params: wrapper.predict(data))
    program = _export(torch, pytorch_model, input_example, signature) if serialization_format == "pt2" else None
    model_dir = prepare_model_dir(path)
    code = copy_code_paths(code_paths, model_dir)
    example_info = save_input_example(model_dir, input_example)
    data_dir = model_dir / DATA_DIR
    data_dir.mkdir()
    if program is not None:
        torch.export.save(program, str(data_dir / EXPORTED_FILE))
    else:
        (data_dir / PICKLE_MODULE_INFO).write_text(MLFLOW_PICKLE_MODULE, encoding="utf-8")
        torch.save(pytorch_model, data_dir / PICKLED_FILE, pickle_module=_CLOUDPICKLE_MODULE)
    pyfunc = pyfunc_section(LOADER_MODULE, data=DATA_DIR, pickle_module_name=MLFLOW_PICKLE_MODULE,
                            config={"device": None}, **({"code": code} if code else {}))
    section = {"code": code, "model_data": DATA_DIR, "pytorch_version": str(torch.__version__)}
    # Without the local label (+cpu), as MLflow pins torch: it installs from PyPI.
    requirements = [pin.split("+")[0] for pin in pinned("torch", "cloudpickle")]
    return write_model(model_dir, {"python_function": pyfunc, FLAVOR_NAME: section},
                       requirements=requirements if pip_requirements is None else list(pip_requirements),
                       signature=signature, example_info=example_info, metadata=metadata)


def _export(torch: Any, module: Any, example: np.ndarray, signature: ModelSignature | None) -> Any:
    """``torch.export`` on the example, the signature's ``-1`` dimensions dynamic (MLflow's rule)."""
    inputs = signature.inputs if signature else None
    if inputs is None or not inputs.is_tensor_spec or len(inputs.specs) != 1:
        raise ValueError("serialization_format='pt2' needs a signature with one tensor input")
    dynamic = {i: torch.export.Dim.AUTO for i, size in enumerate(inputs.specs[0].shape) if size == -1}
    return torch.export.export(module, (torch.from_numpy(example),), dynamic_shapes=[dynamic or None])
