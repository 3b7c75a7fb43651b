"""What decoding works on and what it produces: the request body, the model's input plan, and
the decoded request."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flavors.signature import ModelSignature

from ..errors import ScoringError
from .json_body import check_before_parsing, check_json_depth, parse_json
from .limits import NO_LIMITS, DecodeLimits

LLM_FORMAT = "llm"

if TYPE_CHECKING:
    from ..fast_path import NumericFastPath
    from ..protocols.answers import Answer


@dataclass
class RequestBody:
    """The raw body and its Content-Type; the JSON value is parsed at most once per request,
    whoever asks first (choosing a model by its ``params``, or decoding). ``limits`` bound what
    it may decode into (an HTTP request's come from the server's configuration)."""

    raw: bytes
    content_type: str | None
    limits: DecodeLimits = NO_LIMITS
    _parsed: Any = field(default=None, init=False, repr=False)
    _error: ScoringError | None = field(default=None, init=False, repr=False)
    _done: bool = field(default=False, init=False, repr=False)

    def json(self) -> Any:
        """The body as a JSON value; a 400 :class:`ScoringError` when it is not JSON."""
        if not self._done:
            try:
                limits = self.limits
                opened = check_before_parsing(self.raw, limits) if limits is not NO_LIMITS else None
                self._parsed = parse_json(self.raw)
                if limits.max_json_depth is not None:
                    check_json_depth(self._parsed, limits.max_json_depth, opened)
            except ScoringError as error:
                self._parsed, self._error = None, error
            self._done = True
        if self._error is not None:
            raise self._error
        return self._parsed


@dataclass(frozen=True)
class ModelInputs:
    """What decoding needs to know about the model: its signature, and the numeric fast path
    when its input is a fixed set of double columns."""

    signature: ModelSignature | None
    fast_path: NumericFastPath | None = None


@dataclass
class DecodedRequest:
    """Model input and params, the body format they came in (``dataframe_split``, ``csv``,
    ``llm``, ...), and the :class:`Answer` the client expects.

    ``validated`` marks input the fast path already built in the model's column order and
    types, so the signature step leaves it alone.
    """

    data: Any
    params: Any = None
    format: str = "unknown"
    answer: Answer | None = None
    validated: bool = False

    @property
    def rows(self) -> int | None:
        """How many rows the input holds, when it is tabular or an array."""
        data = self.data
        if self.format == LLM_FORMAT:
            return 1
        if isinstance(data, (pd.DataFrame, np.ndarray)):
            return len(data) if getattr(data, "ndim", 2) > 0 else 1
        if isinstance(data, dict) and data:
            first = next(iter(data.values()))
            return len(first) if isinstance(first, (list, np.ndarray)) and np.ndim(first) > 0 else 1
        if isinstance(data, list):
            return len(data)
        return None
