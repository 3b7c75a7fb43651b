"""What a process agrees to load: which model file formats, and which skops types it trusts.

A model directory is data written by someone else, but some of its formats are code:

* ``pickle`` and ``cloudpickle`` (scikit-learn ``model.pkl``, a custom model's
  ``python_model.pkl``): unpickling calls whatever functions the file names, so loading one runs
  its author's code. The two are equally able to; the name is only what ``MLmodel`` declares.
* ``code``: a models-from-code ``.py`` file, which is run to build the model.
* ``skops``: a scikit-learn model rebuilt by skops from a whitelist of types, without running
  code from the file. Types beyond skops' defaults load only when *this policy* trusts them;
  the ``skops_trusted_types`` a model's own ``MLmodel`` lists are never taken on its word (a
  model's author could trust anything, as MLflow's security advisory on the same key found).
* ``onnx``, ``xgboost``, ``lightgbm``, ``torch-export``, ``keras``: a framework's own file of
  weights and graph (ONNX protobuf; XGBoost JSON/UBJSON; LightGBM's text model; a ``torch.export``
  archive; a Keras 3 ``.keras`` archive, loaded in Keras' safe mode), read without running code
  from the file. A PyTorch module pickled whole (``model.pth``) is ``cloudpickle``.

:class:`LoadingPolicy` is passed to :func:`flavors.load_model` by whoever decides (the server,
from its configuration); the default allows every format and trusts no extra skops type.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from flavors.errors import ModelLoadError

SKOPS = "skops"
CLOUDPICKLE = "cloudpickle"
PICKLE = "pickle"
CODE = "code"
ONNX = "onnx"
XGBOOST = "xgboost"
LIGHTGBM = "lightgbm"
TORCH_EXPORT = "torch-export"
KERAS = "keras"
#: Every format, in the order the docs and the ``--model-formats`` default list them.
FORMATS = (SKOPS, ONNX, XGBOOST, LIGHTGBM, TORCH_EXPORT, KERAS, CLOUDPICKLE, PICKLE, CODE)
#: Formats whose loading runs code from the model file.
PICKLE_FORMATS = frozenset({CLOUDPICKLE, PICKLE})
CODE_FORMATS = PICKLE_FORMATS | {CODE}
#: The devices a policy may name.
DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")
#: The server's flags that set a policy, named by the messages of refused models.
FORMATS_FLAG = "--model-formats"
TRUSTED_TYPES_FLAG = "--skops-trusted-types"


class FormatNotAllowedError(ModelLoadError):
    """The model is stored in a format the loading policy refuses."""

    def __init__(self, what: object, model_format: str, allowed: Iterable[str]) -> None:
        self.model_format = model_format
        allowed = [name for name in FORMATS if name in set(allowed)]
        runs_code = " (loading it runs code from the model file)" if model_format in CODE_FORMATS else ""
        super().__init__(
            f"{what} is stored as {model_format}{runs_code}, which this server's loading policy refuses: "
            f"it allows {', '.join(allowed) or 'no format'} ({FORMATS_FLAG})"
        )
        self.public_message = f"the model is stored as {model_format}, which the server's loading policy refuses"


@dataclass(frozen=True)
class LoadingPolicy:
    """The formats a load may read, the extra skops types it trusts (``module.Qualified.Name``), and
    the device models run on where their flavor can choose (``cpu``, ``cuda``, ``cuda:N``: ONNX's
    execution providers, PyTorch's device), e.g. ``LoadingPolicy(formats={"skops"},
    skops_trusted_types={"my_pkg.Scaler"})``."""

    formats: frozenset[str] = field(default_factory=lambda: frozenset(FORMATS))
    skops_trusted_types: frozenset[str] = frozenset()
    device: str = "cpu"

    def __post_init__(self) -> None:
        formats = frozenset(self.formats) if not isinstance(self.formats, str) else frozenset({self.formats})
        unknown = sorted(formats - set(FORMATS))
        if unknown:
            raise ValueError(f"unknown model format(s) {', '.join(unknown)}: use {', '.join(FORMATS)}")
        if not DEVICE.fullmatch(self.device):
            raise ValueError(f"unknown device {self.device!r}: use cpu, cuda or cuda:N")
        object.__setattr__(self, "formats", formats)
        object.__setattr__(self, "skops_trusted_types", frozenset(self.skops_trusted_types))

    @property
    def allows_everything(self) -> bool:
        """Every format allowed (the default): flavors that cannot say what they load are let through."""
        return self.formats == frozenset(FORMATS)

    def require(self, model_format: str, what: object) -> None:
        """Raise :class:`FormatNotAllowedError` unless ``model_format`` is allowed; ``what`` names the file."""
        if model_format not in self.formats:
            raise FormatNotAllowedError(what, model_format, self.formats)


#: What ``load_model`` uses when given no policy: every format, no extra skops type.
DEFAULT_POLICY = LoadingPolicy()
