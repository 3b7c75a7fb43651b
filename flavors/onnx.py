"""ONNX models (``loader_module: mlflow.onnx``): loading with onnxruntime, and saving.

Inputs are fed and outputs shaped exactly as MLflow's ``_OnnxModelWrapper.predict``: a DataFrame
is one tensor (its values) for a one-input graph, else one 1-D tensor per input name; float64 is
cast to float32 for ``tensor(float)`` inputs; a DataFrame is answered by a DataFrame of the
outputs (each flattened), an array or dict of arrays by a dict keyed by output name.

Sessions: the server loads the model in the gunicorn master, then forks. onnxruntime's thread
pools do not survive a fork, so a session is only ever used by the process that made it: load
makes one (so a broken model or provider fails at load), and each worker makes its own on its
first prediction. ``intra_op_num_threads`` defaults to 1 (unless ``onnx_session_options`` in
MLmodel sets it): each worker is a process, and onnxruntime's default of a thread per core in
every worker would oversubscribe the CPU; parallelism comes from workers.

Providers: the loading policy's ``device`` decides, not MLmodel's ``providers`` list (which MLflow
writes CUDA-first by default): ``cpu`` runs on ``CPUExecutionProvider``; ``cuda``/``cuda:N``
requires ``CUDAExecutionProvider`` (with that ``device_id``) to be available and active, else
the load fails. Provider options listed in MLmodel are kept.

Capabilities: only models with a column-based signature are answered with DataFrames, which
batching can split by rows, so only they may be ``row_independent``; a graph can mix rows
(a softmax over the batch, a reshape), so it is *measured* at load: a probe of rows built from
the signature must predict the same batched as row by row. ``array_input`` is declared for a
column signature of float columns feeding a graph's single float input, which MLflow feeds
``DataFrame.values`` anyway. Classifiers with a label and a probability output (skl2onnx's
``output_label``/``output_probability``, onnxmltools' ``label``/``probabilities``) offer
``predict`` (the label) and ``predict_proba`` (the probabilities).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from flavors.base import ArrayInput, Capabilities, import_framework
from flavors.errors import ModelLoadError
from flavors.measured import rows_independent
from flavors.mlmodel import ModelMetadata
from flavors.model_writer import (
    pinned, prepare_model_dir, pyfunc_section, resolve_signature, save_input_example, write_model,
)
from flavors.policy import DEFAULT_POLICY, ONNX, LoadingPolicy
from flavors.signature import ColSpec, ModelSignature, ScalarType

FLAVOR_NAME = "onnx"
LOADER_MODULE = "mlflow.onnx"
MODEL_FILE = "model.onnx"
EXTRA = "onnx"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
#: What MLflow writes in MLmodel when ``onnx_execution_providers`` is not given.
DEFAULT_PROVIDERS = [CUDA, CPU]
#: (label output, probability output) names of classifiers converted by skl2onnx / onnxmltools.
CLASSIFIER_OUTPUTS = (("output_label", "output_probability"), ("label", "probabilities"))
FLOAT_INPUTS = {"tensor(float)", "tensor(double)"}
#: Signature column types a probe can be made of, with their numpy dtype.
PROBE_DTYPES = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32}
PROBE_ROWS = 4
#: How far a batched float may be from the row's own (a few float32 ulps).
FLOAT32_RTOL = 1e-5


class OnnxPredictor:
    """An onnxruntime session per process, fed and answered as MLflow's ONNX pyfunc."""

    def __init__(self, model_file: Path, providers: list, options: dict | None, metadata: ModelMetadata) -> None:
        self.model_file = model_file
        self._providers = providers
        self._options = options
        self._lock = threading.Lock()
        self._session, self._pid = self._new_session(), os.getpid()
        self.inputs = [(node.name, node.type) for node in self._session.get_inputs()]
        self.output_names = [node.name for node in self._session.get_outputs()]
        self._methods = _classifier_methods(self.output_names)
        inputs = metadata.signature.inputs if metadata.signature else None
        self._column_based = inputs is not None and not inputs.is_tensor_spec
        self.capabilities = Capabilities(
            row_independent=self._column_based and rows_independent(self.predict, _probe(inputs.specs),
                                                                    FLOAT32_RTOL, 0.0),
            array_input=self._array_input(inputs.specs) if self._column_based else None,
            predict_methods=tuple(self._methods),
        )

    @property
    def active_providers(self) -> list[str]:
        """The execution providers this process's session runs on."""
        return self._process_session().get_providers()

    def predict(self, data: Any, params: dict | None = None) -> Any:
        """All outputs, as MLflow answers them (see the module docstring); no ``params``."""
        return self._run(data, self.output_names)

    def predict_with(self, method: str, data: Any) -> Any:
        """The classifier's label (``predict``) or probabilities (``predict_proba``) alone; a 2-D
        probability tensor answered to a DataFrame stays one row per input row."""
        return self._run(data, [self._methods[method]])

    def _run(self, data: Any, output_names: list[str]) -> Any:
        feeds = self._cast(self._feeds(data))
        outputs = self._process_session().run(output_names, feeds)
        if not self._as_frame(data):
            return dict(zip(output_names, outputs))
        if len(outputs) == 1 and np.ndim(outputs[0]) == 2 and np.shape(outputs[0])[1] > 1:
            return outputs[0]  # one chosen 2-D output: flattening it as MLflow would mix rows
        return pd.DataFrame.from_dict({name: np.asarray(out).reshape(-1) for name, out in zip(output_names, outputs)})

    def _as_frame(self, data: Any) -> bool:
        """A DataFrame, or the fast path's matrix standing for one (column signatures only)."""
        return isinstance(data, pd.DataFrame) or (self._column_based and isinstance(data, np.ndarray))

    def _feeds(self, data: Any) -> dict:
        if isinstance(data, dict):
            return dict(data)
        if isinstance(data, np.ndarray):
            if len(self.inputs) != 1:
                raise ValueError(f"a single array cannot feed a model with {len(self.inputs)} inputs: "
                                 f"send named inputs {[name for name, _ in self.inputs]}")
            return {self.inputs[0][0]: data}
        if isinstance(data, pd.DataFrame):
            if len(self.inputs) > 1:
                return {name: data[name].values for name, _ in self.inputs}
            return {self.inputs[0][0]: data.values}
        raise TypeError(f"input should be a dict, a numpy array or a DataFrame, got {type(data).__name__}")

    def _cast(self, feeds: dict) -> dict:
        """float64 → float32 for ``tensor(float)`` inputs, as MLflow (JSON numbers decode as float64)."""
        for name, kind in self.inputs:
            feed = feeds.get(name)
            if kind == "tensor(float)" and isinstance(feed, np.ndarray) and feed.dtype == np.float64:
                feeds[name] = feed.astype(np.float32)
        return feeds

    def _process_session(self) -> Any:
        """This process's session: a forked worker makes its own on its first prediction."""
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._session, self._pid = self._new_session(), pid
        return self._session

    def _new_session(self) -> Any:
        ort = _onnxruntime(self.model_file)
        try:  # by path, so that onnxruntime finds external data (<uuid>.data) next to the file
            return ort.InferenceSession(str(self.model_file), sess_options=_session_options(ort, self._options),
                                        providers=self._providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"could not load ONNX model {self.model_file}: {type(exc).__name__}: {exc}") from exc

    def _array_input(self, specs: tuple) -> ArrayInput | None:
        """A float matrix feeds a one-float-input graph as ``DataFrame.values`` would."""
        floats = all(isinstance(s, ColSpec) and s.name and s.type in (ScalarType("double"), ScalarType("float"))
                     for s in specs)
        if len(self.inputs) != 1 or self.inputs[0][1] not in FLOAT_INPUTS or not floats:
            return None
        return ArrayInput(len(specs), tuple(spec.name for spec in specs))


def _onnxruntime(what: object) -> Any:
    """The onnxruntime module (telemetry off), or a load error naming the extra."""
    _without_telemetry()
    return import_framework("onnxruntime", EXTRA, what)


def _without_telemetry() -> None:
    """ONNX Runtime starts Microsoft's telemetry client when first imported (1.32, on Linux too): it writes
    $TMPDIR/.ses, and a process forked after the import (a gunicorn worker) hangs or aborts in its exit.
    A server sends no telemetry: off unless the user set ``ORT_DISABLE_TELEMETRY``."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def _classifier_methods(output_names: list[str]) -> dict[str, str]:
    """``predict``/``predict_proba`` → output name, for a known classifier's two outputs."""
    for label, probabilities in CLASSIFIER_OUTPUTS:
        if output_names == [label, probabilities]:
            return {"predict": label, "predict_proba": probabilities}
    return {}


def _probe(specs: tuple) -> pd.DataFrame | None:
    """:data:`PROBE_ROWS` rows of fixed random numbers for named numeric columns; None otherwise."""
    rng = np.random.default_rng(0)
    columns = {}
    for spec in specs:
        dtype = PROBE_DTYPES.get(getattr(spec.type, "name", None))
        if not spec.name or dtype is None:
            return None
        columns[spec.name] = (rng.normal(size=PROBE_ROWS) * 3).astype(dtype)
    return pd.DataFrame(columns)


def _session_options(ort: Any, options: dict | None) -> Any:
    """MLmodel's ``onnx_session_options`` applied as MLflow applies them; one intra-op thread unless set."""
    options = options or {}
    session = ort.SessionOptions()
    session.intra_op_num_threads = options.get("intra_op_num_threads") or 1
    if options.get("inter_op_num_threads"):
        session.inter_op_num_threads = options["inter_op_num_threads"]
    mode = str(options.get("execution_mode") or "").upper()
    if mode in ("SEQUENTIAL", "PARALLEL"):
        session.execution_mode = getattr(ort.ExecutionMode, f"ORT_{mode}")
    if options.get("graph_optimization_level"):
        session.graph_optimization_level = ort.GraphOptimizationLevel(options["graph_optimization_level"])
    for key, value in (options.get("extra_session_config") or {}).items():
        session.add_session_config_entry(key, value)
    return session


def select_providers(listed: Any, device: str, available: list[str], what: object) -> list:
    """The providers for ``device`` (see the module docstring), keeping options MLmodel lists.

    ``listed`` is MLmodel's ``providers`` (names or ``[name, options]`` pairs; MLflow's default
    when missing); a CUDA device that is not available is a :class:`ModelLoadError`."""
    entries = [listed] if isinstance(listed, str) else list(listed or DEFAULT_PROVIDERS)
    options = {_entry_name(e): dict(e[1]) for e in entries if isinstance(e, (list, tuple)) and len(e) == 2}
    cpu = (CPU, options[CPU]) if CPU in options else CPU
    if device == "cpu":
        return [cpu]
    if CUDA not in available:
        raise ModelLoadError(f"{what}: device {device!r} needs onnxruntime's {CUDA}, which is not available "
                             f"(available: {', '.join(available)}); install onnxruntime-gpu or use device cpu")
    device_id = int(device.partition(":")[2] or 0)
    return [(CUDA, {**options.get(CUDA, {}), "device_id": device_id}), cpu]


def _entry_name(entry: Any) -> str | None:
    if isinstance(entry, (list, tuple)):
        entry = entry[0] if entry else None
    return entry if isinstance(entry, str) else None


class OnnxFlavor:
    name = FLAVOR_NAME
    loader_modules = (LOADER_MODULE,)

    def shared_modules(self, metadata: ModelMetadata) -> tuple[str, ...]:
        """onnxruntime, imported once before the fork by a server of many models (telemetry off)."""
        _without_telemetry()
        return ("onnxruntime",)

    def model_format(self, metadata: ModelMetadata) -> str:
        """An ONNX protobuf (plus external data): no code runs from the file."""
        return ONNX

    def load(self, metadata: ModelMetadata, policy: LoadingPolicy = DEFAULT_POLICY) -> OnnxPredictor:
        conf = metadata.flavors.get(FLAVOR_NAME) or {}
        path = metadata.data_path(FLAVOR_NAME, MODEL_FILE)
        policy.require(ONNX, path)
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        ort = _onnxruntime(path)
        providers = select_providers(conf.get("providers"), policy.device, ort.get_available_providers(), path)
        predictor = OnnxPredictor(path, providers, conf.get("onnx_session_options"), metadata)
        if policy.device != "cpu" and CUDA not in predictor.active_providers:
            raise ModelLoadError(f"{path}: onnxruntime could not start {CUDA} for device {policy.device!r}")
        return predictor


def save_model(
    onnx_model: Any,
    path: str | Path,
    *,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    onnx_execution_providers: list | None = None,
    onnx_session_options: dict | None = None,
    save_as_external_data: bool = True,
    metadata: dict | None = None,
) -> ModelMetadata:
    """Save an ``onnx.ModelProto`` as MLflow's ``mlflow.onnx.save_model`` does (MLflow loads it).

    Tensors of 1 KB or more go to a ``<uuid>.data`` file beside ``model.onnx`` unless
    ``save_as_external_data`` is False. Without a ``signature``, one is inferred from
    ``input_example`` and the model's answer to it; ``signature=False`` saves none.
    ``onnx_execution_providers`` defaults to MLflow's ``[CUDA, CPU]``.
    """
    import onnx

    model_dir = prepare_model_dir(path)
    onnx.save_model(onnx_model, str(model_dir / MODEL_FILE), save_as_external_data=save_as_external_data)
    example_info = save_input_example(model_dir, input_example)
    providers = list(onnx_execution_providers or DEFAULT_PROVIDERS)
    flavor_conf = {"code": None, "data": MODEL_FILE, "onnx_session_options": onnx_session_options,
                   "onnx_version": onnx.__version__, "providers": providers}
    return write_model(
        model_dir,
        {"python_function": pyfunc_section(LOADER_MODULE, data=MODEL_FILE), FLAVOR_NAME: flavor_conf},
        requirements=list(pip_requirements) if pip_requirements is not None else pinned("onnx", "onnxruntime"),
        signature=resolve_signature(signature, input_example, _example_predict(model_dir / MODEL_FILE)),
        example_info=example_info,
        metadata=metadata,
    )


def _example_predict(model_file: Path):
    """Predictions of the saved file for signature inference (an unsigned model, CPU)."""

    def predict(data: Any, params: dict | None) -> Any:
        unsigned = ModelMetadata(path=model_file.parent, flavors={})
        return OnnxPredictor(model_file, [CPU], None, unsigned).predict(data)

    return predict
