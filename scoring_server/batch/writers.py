"""Writing predictions as chunks are scored, so that memory holds one chunk whatever the file size.

CSV and Parquet get the input's columns plus one column per output (``prediction``, ``prediction_0``…
for a matrix, a DataFrame's or a dict's own names); JSON Lines one line per row holding what the
server's ``predictions`` list holds for it; JSON MLflow's ``{"predictions": [...]}`` itself."""
from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import numpy as np
import pandas as pd

from ..encoding import encode_predictions, to_jsonable
from .formats import BatchError
from .readers import Chunk, CsvText, Rows

NULL = b"null"


class Writer:
    """Writes each scored chunk to ``stream``; ``missing`` positions (failed rows written with
    ``--on-error null``) get null predictions."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def inputs_of(self, chunk: Chunk, rows: Rows = None) -> pd.DataFrame | CsvText | None:
        """What of the chunk's ``rows`` this writer writes beside the predictions (read only if it does)."""
        return chunk.frame(rows)

    def write(self, inputs: pd.DataFrame | None, predictions: Any, rows: int, good: list[int] | None) -> None:
        """Write ``rows`` rows: ``inputs`` (None: not tabular) and the predictions of the ``good`` ones
        (None: all of them)."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (a closing bracket, a Parquet footer)."""


class PredictionsOnlyWriter(Writer):
    """A writer of predictions alone: the input's rows are never read back."""

    def inputs_of(self, chunk: Chunk, rows: Rows = None) -> None:
        return None


class JsonLinesWriter(PredictionsOnlyWriter):
    def write(self, inputs: pd.DataFrame | None, predictions: Any, rows: int, good: list[int] | None) -> None:
        lines = _with_nulls(row_values(predictions), rows, good)
        if lines:
            self.stream.write(b"\n".join(lines) + b"\n")


class JsonWriter(PredictionsOnlyWriter):
    """``{"predictions": [...]}`` written a chunk at a time. Predictions that are not one value per row
    (a dict of columns) cannot be split across chunks: they are written as the server writes them when
    the input is one chunk, and refused otherwise."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        self._started = False
        self._whole: Any = None

    def write(self, inputs: pd.DataFrame | None, predictions: Any, rows: int, good: list[int] | None) -> None:
        if self._whole is not None or (not _per_row(predictions) and self._started):
            raise BatchError("the model returns a dict of columns, which JSON output cannot split into chunks: "
                             "use --output-format jsonl, csv or parquet, or a --batch-size covering the input")
        if not _per_row(predictions) and good is None:
            self._whole = predictions
            return
        self._begin()
        if good is None:
            body = encode_predictions(predictions, wrap=False)[1:-1]
        else:
            body = b",".join(_with_nulls(row_values(predictions), rows, good))
        if body:
            self.stream.write((b"," if self._written else b"") + body)
            self._written = True

    def close(self) -> None:
        if self._whole is not None:
            self.stream.write(encode_predictions(self._whole) + b"\n")
            return
        self._begin()
        self.stream.write(b"]}\n")

    def _begin(self) -> None:
        if not self._started:
            self.stream.write(b'{"predictions":[')  # as the server's orjson writes it
            self._started, self._written = True, False


class CsvWriter(Writer):
    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        self._header = True

    def inputs_of(self, chunk: Chunk, rows: Rows = None) -> pd.DataFrame | CsvText | None:
        return chunk.csv_text(rows) or chunk.frame(rows)

    def write(self, inputs: pd.DataFrame | CsvText | None, predictions: Any, rows: int,
              good: list[int] | None) -> None:
        text = _beside(inputs, output_table(None, predictions, rows, good), self._header) \
            if isinstance(inputs, CsvText) else None
        if text is None:
            frame = inputs.frame() if isinstance(inputs, CsvText) else inputs
            text = output_table(frame, predictions, rows, good).to_csv(index=False, header=self._header).encode()
        self.stream.write(text)
        self._header = False


def _beside(inputs: CsvText, predictions: pd.DataFrame, header: bool) -> bytes | None:
    """The input rows' own text, each followed by its predictions' CSV cells (None: the predictions
    have no columns, or cells that are quoted and may hold newlines)."""
    cells = _csv_cells(predictions) if len(predictions.columns) else None
    if cells is None or len(cells) != len(inputs.rows):
        return None
    rows = inputs.rows
    if header:
        rows, cells = [inputs.header] + rows, [predictions.iloc[:0].to_csv(index=False).rstrip("\n").encode()] + cells
    return b"\n".join(map(b",".join, zip(rows, cells))) + b"\n"


def _csv_cells(predictions: pd.DataFrame) -> list[bytes] | None:
    """Each row's prediction cells as pandas writes them (None: a cell is quoted, it may hold a newline).
    A column of integers or booleans, the usual labels, is formatted directly: pandas takes ten times
    as long to write the same text."""
    dtype = predictions.dtypes.iloc[0]
    if predictions.shape[1] == 1 and isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return "\n".join(map(str, predictions.iloc[:, 0].tolist())).encode().split(b"\n")
    text = predictions.to_csv(index=False, header=False).encode()
    return None if b'"' in text else text.split(b"\n")[:-1]


class ParquetWriter(Writer):
    """One row group per chunk; later chunks are cast to the first one's schema (a column that is
    integer in one chunk and float in the next)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        self._writer = None

    def write(self, inputs: pd.DataFrame | None, predictions: Any, rows: int, good: list[int] | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(output_table(inputs, predictions, rows, good), preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.stream, table.schema)
        elif table.schema != self._writer.schema:
            try:
                table = table.cast(self._writer.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise BatchError(f"a chunk's columns do not match the first chunk's for Parquet output: {exc}") \
                    from None
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


WRITERS = {"jsonl": JsonLinesWriter, "json": JsonWriter, "csv": CsvWriter, "parquet": ParquetWriter}


def output_table(inputs: pd.DataFrame | None, predictions: Any, rows: int, good: list[int] | None) -> pd.DataFrame:
    """The input's columns (when tabular) and one column per output, failed rows' predictions empty."""
    columns = prediction_columns(predictions) if predictions is not None else pd.DataFrame()
    if good is not None:  # integer columns stay integers beside the empty cells
        columns = columns.astype({name: "Int64" for name in columns if columns[name].dtype.kind in "iu"})
        columns.index = good
        columns = columns.reindex(range(rows))
    if inputs is None:
        return columns
    return pd.concat([inputs.reset_index(drop=True), columns], axis=1)


def prediction_columns(predictions: Any) -> pd.DataFrame:
    """One column per output: a DataFrame's or a dict's names, ``prediction`` for one value per row,
    ``prediction_0``… for a row of values."""
    if isinstance(predictions, pd.DataFrame):
        return predictions.reset_index(drop=True)
    if isinstance(predictions, pd.Series):
        return predictions.reset_index(drop=True).to_frame(predictions.name or "prediction")
    if isinstance(predictions, dict):
        return pd.concat([_array_columns(str(name), value) for name, value in predictions.items()], axis=1)
    return _array_columns("prediction", predictions)


def _array_columns(name: str, values: Any) -> pd.DataFrame:
    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if array.ndim == 2:
        return pd.DataFrame(array, columns=[f"{name}_{i}" for i in range(array.shape[1])])
    if array.ndim == 1:
        return pd.DataFrame({name: array})
    return pd.DataFrame({name: list(array)})


def row_values(predictions: Any) -> list[bytes]:
    """Each row's prediction as the server's JSON writes it in the ``predictions`` list."""
    if predictions is None:
        return []
    value = to_jsonable(predictions)
    if isinstance(value, np.ndarray) and value.ndim == 1 and (value.dtype.kind in "iub" or (
            value.dtype.kind == "f" and np.isfinite(value).all())):
        return encode_predictions(value, wrap=False)[1:-1].split(b",") if len(value) else []
    if isinstance(value, dict):
        names = list(value)
        value = [dict(zip(names, row)) for row in zip(*value.values())]
    return [encode_predictions(row, wrap=False) for row in value]


def _per_row(predictions: Any) -> bool:
    """Whether the server's JSON of these predictions is a list with one item per row."""
    return not isinstance(to_jsonable(predictions), dict)


def _with_nulls(values: list[bytes], rows: int, good: list[int] | None) -> list[bytes]:
    if good is None or len(good) == rows:
        return values
    placed = [NULL] * rows
    for position, value in zip(good, values):
        placed[position] = value
    return placed


class RejectsWriter:
    """The failed rows, in the input's format (fixed, they can be scored again), with their ``row`` and
    ``error``; the file is made at the first failure only."""

    def __init__(self, path: str, fmt: str) -> None:
        self.path, self.format = path, fmt
        self._stream: IO[bytes] | None = None
        self._writer: Writer | None = None
        self.rows = 0

    def write(self, inputs: pd.DataFrame, first_row: int, failures: Sequence[Any]) -> None:
        """``inputs`` are the failed rows of a chunk starting at data row ``first_row``."""
        frame = inputs.assign(row=[first_row + failure.position for failure in failures],
                              error=[failure.message for failure in failures])
        if self._stream is None:
            self._stream = open(self.path, "wb")
        if self.format == "jsonl":
            self._stream.write(frame.to_json(orient="records", lines=True).encode().rstrip(b"\n") + b"\n")
        else:
            self._writer = self._writer or WRITERS[self.format](self._stream)
            self._writer.write(frame, None, len(frame), None)
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._stream is not None:
            self._stream.close()
