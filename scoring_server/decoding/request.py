"""The decoded form of a scoring request."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class DecodedRequest:
    """Model input and params; ``unwrapped`` marks a raw LLM-style payload, answered without
    the ``{"predictions": ...}`` wrapper as MLflow does."""

    data: Any
    params: Any = None
    unwrapped: bool = False
