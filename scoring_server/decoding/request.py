"""The decoded form of a scoring request."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class DecodedRequest:
    """Model input and params. ``unwrapped`` marks a raw LLM-style payload and ``legacy`` an
    MLflow 1.x request: both are answered without the ``{"predictions": ...}`` wrapper."""

    data: Any
    params: Any = None
    unwrapped: bool = False
    legacy: bool = False

    @property
    def wrapped(self) -> bool:
        """Whether the answer is ``{"predictions": ...}``."""
        return not (self.unwrapped or self.legacy)
