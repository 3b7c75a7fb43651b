"""Wire protocols: one object per generation of the scoring protocol (MLflow 2.x, MLflow 1.x,
and ``auto`` for both), each owning Content-Type negotiation, decoding, encoding and the
wording of its errors. The scorer calls :meth:`WireProtocol.decode` and :meth:`~WireProtocol.encode`
and never asks which protocol it speaks.
"""
from __future__ import annotations

from .answers import Answer
from .auto import AUTO, AutoProtocol
from .base import WireProtocol
from .mlflow1 import MLFLOW1, Mlflow1Protocol
from .mlflow2 import MLFLOW2, Mlflow2Protocol

_PROTOCOLS: dict[str, WireProtocol] = {p.name: p for p in (Mlflow2Protocol(), Mlflow1Protocol(), AutoProtocol())}

__all__ = ["AUTO", "MLFLOW1", "MLFLOW2", "Answer", "WireProtocol", "protocol_named", "protocols"]


def protocols() -> tuple[str, ...]:
    """The names of the protocols implemented here (``config.PROTOCOLS`` lists them for validation)."""
    return tuple(_PROTOCOLS)


def protocol_named(name: str) -> WireProtocol:
    """The protocol object for a configured name (``mlflow2``, ``mlflow1`` or ``auto``)."""
    try:
        return _PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; expected one of {list(_PROTOCOLS)}") from None
