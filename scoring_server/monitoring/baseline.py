"""The training baseline: how a model's inputs and predictions were distributed in its training
data, saved with the model (``baseline.json``) so that a server can tell when what it scores drifts.

Each input column and each prediction output becomes one :class:`Distribution`: numeric values
are cut at their quantiles (deciles by default, the same edge once for discrete data), strings and
booleans count their most common values (the rest as one "other" bin); missing values have a bin
of their own. The training rows go through the server's own path (signature enforcement, the
numeric fast path, the flavor's ``predict``), so the baseline describes exactly what a request's
rows and predictions will look like, and a request's rows are binned by the same code.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from flavors import LoadedModel

    from ..decoding import DecodedRequest
    from ..pipeline import Scorer

_logger = logging.getLogger(__name__)

BASELINE_FILE = "baseline.json"
FORMAT = 1
DEFAULT_BINS = 10
#: Values of a categorical column kept by name; the rest share the "other" bin.
TOP_VALUES = 20
#: Training rows used at most (a uniform sample beyond): enough for deciles, bounded for ``predict``.
DEFAULT_MAX_ROWS = 100_000
#: The output name of a model returning one value per row.
PREDICTION = "prediction"
#: Models with more outputs than this (embeddings, probabilities of many classes) get no prediction baseline.
MAX_OUTPUTS = 20
NUMERIC, CATEGORICAL = "numeric", "categorical"


class BaselineError(ValueError):
    """Training data or a model a baseline cannot be made from, or a malformed baseline file."""


@dataclass(frozen=True, eq=False)
class NumericBins:
    """Bins ``(-inf, e0], (e0, e1], ..., (e_last, inf]`` and a last bin for missing values (NaN)."""

    edges: np.ndarray
    _bounds: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bounds", np.append(self.edges, np.inf))

    @property
    def size(self) -> int:
        return len(self.edges) + 2

    def codes(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value: numpy sorts NaN after +inf, so it lands in the missing bin."""
        return np.searchsorted(self._bounds, _as_float(values), side="left")


@dataclass(frozen=True)
class CategoricalBins:
    """One bin per listed value, then "other", then missing (None, NaN)."""

    values: tuple
    _positions: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_positions", {value: i for i, value in enumerate(self.values)})

    @property
    def size(self) -> int:
        return len(self.values) + 2

    def codes(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value (numpy strings and booleans hash like Python's)."""
        positions, other = self._positions, len(self.values)
        codes = np.fromiter((positions.get(value, other) for value in values), dtype=np.intp, count=len(values))
        unknown = codes == other
        if unknown.any():  # missing values are among the unknown ones
            codes[unknown & pd.isna(values)] = other + 1
        return codes


Bins = Union[NumericBins, CategoricalBins]


@dataclass(frozen=True, eq=False)
class Distribution:
    """How one column (an input, or a prediction output) is binned, and the share of training
    rows in each bin (``shares`` sums to 1, missing values included)."""

    name: str
    bins: Bins
    shares: np.ndarray

    @property
    def kind(self) -> str:
        return NUMERIC if isinstance(self.bins, NumericBins) else CATEGORICAL

    def to_json(self) -> dict:
        shares = [float(share) for share in self.shares]
        if isinstance(self.bins, NumericBins):
            return {"name": self.name, "kind": NUMERIC, "edges": [float(edge) for edge in self.bins.edges],
                    "shares": shares[:-1], "missing": shares[-1]}
        return {"name": self.name, "kind": CATEGORICAL, "values": list(self.bins.values), "shares": shares[:-2],
                "other": shares[-2], "missing": shares[-1]}


@dataclass(frozen=True)
class Baseline:
    """A model's reference distributions: its input columns (``features``), its prediction outputs,
    how many training rows they come from, when it was made, and the columns that could not be
    binned (``skipped``: dates, binaries, mixed types)."""

    features: tuple[Distribution, ...]
    predictions: tuple[Distribution, ...]
    rows: int
    created: str
    skipped: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"format": FORMAT, "created": self.created, "rows": self.rows,
                "features": [feature.to_json() for feature in self.features],
                "predictions": [output.to_json() for output in self.predictions],
                "skipped": list(self.skipped)}

    @classmethod
    def from_json(cls, document: Any) -> Baseline:
        """The baseline a :meth:`to_json` document describes; :class:`BaselineError` if malformed."""
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BaselineError(f"not a baseline of format {FORMAT}")
        rows, created, skipped = document.get("rows"), document.get("created"), document.get("skipped", [])
        if not isinstance(rows, int) or rows < 1 or not isinstance(created, str) or not _strings(skipped):
            raise BaselineError("rows, created or skipped is missing or malformed")
        return cls(_distributions(document.get("features")), _distributions(document.get("predictions")), rows,
                   created, tuple(skipped))


class InputColumns:
    """Reads named columns out of a validated model input: a DataFrame by name, the numeric fast
    path's matrix (``matrix_columns`` in order) by position. A column the input lacks reads as
    None; an input that is neither (tensors) as None altogether."""

    def __init__(self, names: tuple[str, ...], matrix_columns: tuple[str, ...] | None) -> None:
        self.names = names
        self._width = len(matrix_columns) if matrix_columns else None
        self._positions = [matrix_columns.index(name) if matrix_columns and name in matrix_columns else None
                           for name in names]

    def values(self, data: Any) -> list[np.ndarray | None] | None:
        if isinstance(data, pd.DataFrame):
            return [data[name].to_numpy() if name in data.columns else None for name in self.names]
        if isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[1] == self._width:
            return [data[:, position] if position is not None else None for position in self._positions]
        return None


def output_columns(predictions: Any) -> dict[str, np.ndarray] | None:
    """A model's raw output as named columns: one ``prediction`` for one value per row, else one
    per output column (a DataFrame's names, a matrix's positions); None for other shapes."""
    if isinstance(predictions, pd.DataFrame):
        return {str(name): predictions[name].to_numpy() for name in predictions.columns}
    if isinstance(predictions, pd.Series):
        return {PREDICTION: predictions.to_numpy()}
    if isinstance(predictions, list):
        try:
            predictions = np.asarray(predictions)
        except ValueError:  # ragged
            return None
    if isinstance(predictions, np.ndarray) and predictions.ndim == 1:
        return {PREDICTION: predictions}
    if isinstance(predictions, np.ndarray) and predictions.ndim == 2:
        if predictions.shape[1] == 1:
            return {PREDICTION: predictions[:, 0]}
        return {str(j): predictions[:, j] for j in range(predictions.shape[1])}
    return None


def build_baseline(model: LoadedModel, data: pd.DataFrame, bins: int = DEFAULT_BINS,
                   max_rows: int | None = DEFAULT_MAX_ROWS, top_values: int = TOP_VALUES) -> Baseline:
    """The baseline of ``model`` for its training ``data`` (a uniform sample of ``max_rows`` at most).

    :class:`BaselineError` when the data lacks the model's input columns, does not fit its
    signature, or the model cannot predict on it.
    """
    from ..errors import ScoringError
    from ..pipeline import Scorer

    if bins < 2:
        raise BaselineError(f"bins must be at least 2, not {bins}")
    frame = _model_columns(model, data)
    if frame.empty:
        raise BaselineError("the training data has no rows")
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=0)
    scorer = Scorer(model)
    try:
        request = _validated(scorer, frame)
    except ScoringError as exc:
        raise BaselineError(f"the training data does not fit the model's signature: {exc.message}") from exc
    try:
        predictions = model.predict(request.data, request.params)
    except Exception as exc:  # the model's code may raise anything
        raise BaselineError(f"the model failed on the training data: {type(exc).__name__}: {exc}") from exc
    names = scorer.fast_path.columns if isinstance(request.data, np.ndarray) else tuple(map(str, request.data.columns))
    inputs = InputColumns(names, scorer.fast_path.columns if scorer.fast_path else None).values(request.data)
    features, skipped = _distributions_of(dict(zip(names, inputs, strict=True)), bins, top_values)
    outputs = output_columns(predictions) or {}
    predicted, _ = _distributions_of(outputs if len(outputs) <= MAX_OUTPUTS else {}, bins, top_values)
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Baseline(features, predicted, len(frame), created, skipped)


def write_baseline(model_dir: str | Path, baseline: Baseline) -> Path:
    """Write ``baseline`` into the model directory (atomically: a server may be reading it)."""
    path = Path(model_dir) / BASELINE_FILE
    partial = path.with_name(f".{BASELINE_FILE}.{os.getpid()}")
    partial.write_text(json.dumps(baseline.to_json(), indent=1), encoding="utf-8")
    os.replace(partial, path)
    return path


def read_baseline(model_dir: str | Path) -> Baseline | None:
    """The model's baseline; None when it has none. A malformed one is logged and treated as
    absent: a baseline never fails a model load or a request."""
    path = Path(model_dir) / BASELINE_FILE
    try:
        return Baseline.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # json.JSONDecodeError and BaselineError are ValueErrors
        _logger.warning("Ignoring the drift baseline %s: %s", path, exc)
        return None


def save_baseline(model_dir: str | Path, data: pd.DataFrame, bins: int = DEFAULT_BINS,
                  max_rows: int | None = DEFAULT_MAX_ROWS) -> Baseline:
    """Load the model in ``model_dir``, build its baseline from ``data`` and write it there."""
    from flavors import load_model

    baseline = build_baseline(load_model(str(model_dir)), data, bins, max_rows)
    write_baseline(model_dir, baseline)
    return baseline


def read_training_data(path: str | Path) -> pd.DataFrame:
    """A ``.csv`` or ``.parquet`` file as a DataFrame; :class:`BaselineError` saying why it cannot be read."""
    path = Path(path)
    readers = {".csv": pd.read_csv, ".parquet": pd.read_parquet}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise BaselineError(f"{path.name}: training data must be a .csv or .parquet file")
    try:
        return reader(path)
    except (OSError, ValueError, ImportError) as exc:  # pandas and pyarrow parse errors are ValueErrors
        raise BaselineError(f"cannot read training data {path}: {exc}") from None


def _model_columns(model: LoadedModel, data: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns of ``data`` (all of them for a model without a signature)."""
    schema = model.metadata.signature.inputs if model.metadata.signature else None
    if schema is None or not schema.specs:
        return data
    if schema.is_tensor_spec or not schema.has_input_names:
        raise BaselineError("a baseline needs a model whose signature has named input columns, not tensors")
    missing = [name for name in schema.required_input_names() if name not in data.columns]
    if missing:
        raise BaselineError(f"the training data lacks the model's input columns {missing} "
                            f"(it has {[str(column) for column in data.columns]})")
    return data[[name for name in schema.input_names() if name in data.columns]]


def _validated(scorer: Scorer, frame: pd.DataFrame) -> DecodedRequest:
    """``frame`` as the server gives it to the model: signature types, the fast path's matrix."""
    from ..decoding import DecodedRequest

    request = DecodedRequest(frame)
    scorer.validate(request)
    return request


def _distributions_of(columns: dict[str, np.ndarray | None], bins: int,
                      top_values: int) -> tuple[tuple[Distribution, ...], tuple[str, ...]]:
    """The distribution of every column that can be binned, and the names of those that cannot."""
    made, skipped = [], []
    for name, values in columns.items():
        column = distribution_of(name, values, bins, top_values) if values is not None else None
        if column is None:
            skipped.append(name)
        else:
            made.append(column)
    return tuple(made), tuple(skipped)


def distribution_of(name: str, values: np.ndarray, bins: int = DEFAULT_BINS,
                    top_values: int = TOP_VALUES) -> Distribution | None:
    """How ``values`` are distributed, in bins made from them; None for values that cannot be
    binned (dates, bytes, mixed types)."""
    kind = _kind(values)
    if kind is None:
        return None
    column_bins = _numeric_bins(values, bins) if kind == NUMERIC else _categorical_bins(values, top_values)
    counts = np.bincount(column_bins.codes(values), minlength=column_bins.size)
    return Distribution(name, column_bins, counts / len(values))


def _kind(values: np.ndarray) -> str | None:
    """Numbers are numeric; strings and booleans categorical; anything else (dates, bytes, mixed) neither."""
    if values.dtype.kind in "iuf":
        return NUMERIC
    if values.dtype.kind == "b":
        return CATEGORICAL
    if values.dtype.kind in "OU":
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        return {"integer": NUMERIC, "floating": NUMERIC, "mixed-integer-float": NUMERIC,
                "string": CATEGORICAL, "boolean": CATEGORICAL}.get(inferred)
    return None


def _numeric_bins(values: np.ndarray, bins: int) -> NumericBins:
    """Edges at the quantiles of the finite values; values that are data points (``inverted_cdf``),
    so that discrete data gets one bin per value once duplicates are dropped."""
    numbers = _as_float(values)
    finite = numbers[np.isfinite(numbers)]
    if not finite.size:
        return NumericBins(np.empty(0))
    return NumericBins(np.unique(np.quantile(finite, np.arange(1, bins) / bins, method="inverted_cdf")))


def _categorical_bins(values: np.ndarray, top_values: int) -> CategoricalBins:
    """The ``top_values`` most common values, most common first (ties by value, for stable files)."""
    counts = pd.Series(values[~pd.isna(values)]).value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return CategoricalBins(tuple(_plain(value) for value, _ in ranked[:top_values]))


def _as_float(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "iufb":
        return values.astype(np.float64, copy=False)
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON writes."""
    return value.item() if isinstance(value, np.generic) else value


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _distributions(documents: Any) -> tuple[Distribution, ...]:
    if not isinstance(documents, list):
        raise BaselineError("features and predictions must be lists")
    distributions = tuple(_distribution(document) for document in documents)
    names = [distribution.name for distribution in distributions]
    if len(set(names)) != len(names):
        raise BaselineError("a column is described twice")
    return distributions


def _distribution(document: Any) -> Distribution:
    """One column's distribution, checked: bins and shares that agree, shares summing to 1."""
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise BaselineError("a column without a name")
    name, kind = document["name"], document.get("kind")
    try:
        if kind == NUMERIC:
            edges = np.array(document["edges"], dtype=np.float64)
            if edges.ndim != 1 or not np.isfinite(edges).all() or (np.diff(edges) <= 0).any():
                raise BaselineError(f"column {name!r}: edges must be finite and increasing")
            bins: Bins = NumericBins(edges)
            shares = [*document["shares"], document["missing"]]
        elif kind == CATEGORICAL:
            values = document["values"]
            if not all(isinstance(value, (str, bool)) for value in values) or len(set(values)) != len(values):
                raise BaselineError(f"column {name!r}: values must be distinct strings or booleans")
            bins = CategoricalBins(tuple(values))
            shares = [*document["shares"], document["other"], document["missing"]]
        else:
            raise BaselineError(f"column {name!r}: kind must be {NUMERIC!r} or {CATEGORICAL!r}")
        array = np.array(shares, dtype=np.float64)
    except BaselineError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"column {name!r}: malformed bins or shares ({exc})") from None
    if len(array) != bins.size or not np.isfinite(array).all() or (array < 0).any() or abs(array.sum() - 1) > 1e-6:
        raise BaselineError(f"column {name!r}: shares must be one per bin and sum to 1")
    return Distribution(name, bins, array)
