"""The input cut into chunks of rows, each able to give the server's decoded request for any of its
rows (to score the chunk, or to find which of its rows fail)."""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

import orjson
import pandas as pd

from flavors.signature import Schema

from .. import content_types
from ..decoding import (
    DecodedRequest,
    ModelInputs,
    RequestBody,
    decode_json_request,
    decode_table,
)
from ..decoding.csv_body import decode_csv
from ..decoding.json_formats import DATAFRAME_RECORDS
from ..decoding.limits import NO_LIMITS
from ..protocols import MLFLOW2, protocol_named
from .formats import BatchError, parse_failure

Rows = Sequence[int] | None  # positions in a chunk; None: all of them


@dataclass
class Chunk:
    """Rows of the input, ``first_row`` the 1-based data row of the first one."""

    first_row: int
    size: int

    splittable = True  # whether a subset of its rows can be scored alone (to name a failing row)

    def request(self, inputs: ModelInputs, rows: Rows = None) -> DecodedRequest:
        """The decoded request the server would make of these rows sent alone."""
        raise NotImplementedError

    def frame(self, rows: Rows = None) -> pd.DataFrame | None:
        """These rows as the input columns written beside predictions (None: not tabular)."""
        raise NotImplementedError

    def csv_text(self, rows: Rows = None) -> CsvText | None:
        """These rows' own CSV text, when it can be written back as it is (None: write ``frame``)."""
        return None


@dataclass
class CsvText:
    """Rows of a CSV input as their own text (each without its newline): written beside the
    predictions as they are, instead of parsed and formatted again (most of a CSV-to-CSV run)."""

    header: bytes
    rows: list[bytes]
    frame: Callable[[], pd.DataFrame]  # the same rows parsed, where text cannot be written beside


@dataclass
class CsvChunk(Chunk):
    """CSV rows kept as their text: decoded (where they are scored, a worker maybe) by the server's own
    CSV decoding as if they were a request body of their own (numeric rows straight to the model's
    matrix), and a subset of them likewise."""

    header: bytes
    body: bytes  # the rows, each ending with a newline
    schema: Schema | None
    lines: list[bytes] | None = None  # one text per row, when a quoted field may hold a newline

    def request(self, inputs: ModelInputs, rows: Rows = None) -> DecodedRequest:
        return decode_table(self._text(rows), content_types.CSV, inputs)

    def frame(self, rows: Rows = None) -> pd.DataFrame:
        return decode_csv(self._text(rows), self.schema, NO_LIMITS)

    def csv_text(self, rows: Rows = None) -> CsvText | None:
        if self.lines is not None or self.body.count(b",") != self.size * self.header.count(b","):
            return None  # quoted fields, or rows that pandas pads: written as parsed
        lines = [line.rstrip(b"\r") for line in self._lines()] if b"\r" in self.body else self._lines()
        return CsvText(self.header.rstrip(b"\r\n"), lines if rows is None else [lines[i] for i in rows],
                       partial(self.frame, rows))

    def _text(self, rows: Rows) -> bytes:
        if rows is None:
            return self.header + self.body
        lines = self._lines()
        return self.header + b"".join(lines[i] + (b"" if self.lines else b"\n") for i in rows)

    def _lines(self) -> list[bytes]:
        """One text per row: quoted rows as they were cut, else the non-blank lines without newlines."""
        if self.lines:
            return self.lines
        lines = self.body.split(b"\n")[:-1]
        return lines if len(lines) == self.size else [line for line in lines if line.strip(b"\r")]


@dataclass
class ParquetChunk(Chunk):
    """Rows of a Parquet file, read a batch at a time."""

    data: pd.DataFrame

    def request(self, inputs: ModelInputs, rows: Rows = None) -> DecodedRequest:
        return DecodedRequest(self.frame(rows), format="parquet")

    def frame(self, rows: Rows = None) -> pd.DataFrame:
        return self.data if rows is None else self.data.iloc[list(rows)].reset_index(drop=True)


@dataclass
class RecordsChunk(Chunk):
    """JSON Lines rows: each line one record, decoded as the server decodes ``dataframe_records``."""

    records: list

    def request(self, inputs: ModelInputs, rows: Rows = None) -> DecodedRequest:
        records = self.records if rows is None else [self.records[i] for i in rows]
        return decode_json_request({DATAFRAME_RECORDS: records}, inputs)

    def frame(self, rows: Rows = None) -> pd.DataFrame:
        return pd.DataFrame(self.records if rows is None else [self.records[i] for i in rows])


@dataclass
class PayloadChunk(Chunk):
    """A whole JSON request body (any of the server's JSON formats), decoded as the server decodes it:
    one chunk, scored as one request."""

    decoded: DecodedRequest
    columns: pd.DataFrame | None  # the input as a table, when it is one
    splittable = False

    def request(self, inputs: ModelInputs, rows: Rows = None) -> DecodedRequest:
        return self.decoded

    def frame(self, rows: Rows = None) -> pd.DataFrame | None:
        return self.columns


def read_chunks(source: IO[bytes], path: str | None, fmt: str, batch_size: int,
                inputs: ModelInputs) -> Iterator[Chunk]:
    """The chunks of ``source`` (the file at ``path``, None: stdin), in order; a parse failure is a
    :class:`BatchError` with a format hint."""
    readers = {"csv": _csv_chunks, "jsonl": _jsonl_chunks, "json": _json_chunks, "parquet": _parquet_chunks}
    try:
        yield from readers[fmt](source, batch_size, inputs)
    except BatchError:
        raise
    except Exception as exc:  # pandas, pyarrow and orjson raise many types for malformed input
        raise parse_failure(fmt, path, exc) from None


def input_size(path: str | None, fmt: str) -> tuple[int | None, int | None]:
    """(rows, bytes) of the input when known up front: Parquet's footer counts rows, a file has a size."""
    if not path:
        return None, None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows, None
    return None, os.path.getsize(path)


def _csv_chunks(source: IO[bytes], batch_size: int, inputs: ModelInputs) -> Iterator[Chunk]:
    lines = LineReader(source)
    header = lines.readline()
    if not header.strip():
        raise ValueError("no header row")
    header, schema, row = _ended(header), inputs.signature.inputs if inputs.signature else None, 1
    while block := lines.take(batch_size):
        if b'"' in block:
            rows = _quoted_rows(block.splitlines(keepends=True), lines)
            chunk = CsvChunk(row, len(rows), header, b"".join(rows), schema, rows)
        else:  # a row a line; pandas skips blank ones
            chunk = CsvChunk(row, _data_lines(block), header, block, schema)
        if chunk.size:
            yield chunk
            row += chunk.size


class LineReader:
    """Whole lines of a byte stream, taken many at a time: the end of the last line is found by C-speed
    counting and searching over large reads, not by a Python step per line (a tenth of a 10M-row CSV
    run, when it was)."""

    READ_SIZE = 1 << 20

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.buffer = b""
        self.start = 0  # where the lines not yet taken begin in ``buffer``
        self.line_size = 0  # bytes a line takes, on average so far: where to look for the end

    def take(self, count: int) -> bytes:
        """The next ``count`` lines (what is left, at the end), the last one ended with a newline."""
        while (end := self._end_of(count)) is None:
            if not self._read_more():
                block, self.buffer, self.start = self.buffer[self.start:], b"", 0
                return _ended(block) if block else b""
        block, self.start = self.buffer[self.start:end], end
        self.line_size = len(block) // count + 1
        return block

    def readline(self) -> bytes:
        """The next line (b"" at the end)."""
        return self.take(1)

    def _end_of(self, count: int) -> int | None:
        """Where the ``count``-th line from ``start`` ends in ``buffer`` (None: it does not yet): the
        newlines before a guessed end are counted, and the guess moved a line at a time to fit."""
        buffer, start = self.buffer, self.start
        position = min(len(buffer), start + count * self.line_size)
        found = buffer.count(b"\n", start, position)
        while found < count:
            position = buffer.find(b"\n", position) + 1
            if not position:
                return None
            found += 1
        while found > count:
            position = buffer.rfind(b"\n", start, position)
            found -= 1
        return buffer.rfind(b"\n", start, position) + 1

    def _read_more(self) -> bool:
        more = self.source.read(self.READ_SIZE)
        self.buffer, self.start = self.buffer[self.start:] + more, 0
        if more and not self.line_size:
            self.line_size = len(more) // max(more.count(b"\n"), 1) + 1
        return bool(more)


def _data_lines(block: bytes) -> int:
    """The rows of newline-ended lines without quotes: blank lines are not rows."""
    if b"\n\n" not in block and b"\n\r\n" not in block and not block.startswith((b"\n", b"\r\n")):
        return block.count(b"\n")
    return sum(1 for line in block.split(b"\n")[:-1] if line not in (b"", b"\r"))


def _quoted_rows(lines: list[bytes], more: LineReader) -> list[bytes]:
    """Lines joined into rows until their quotes pair up (a quoted field may hold newlines), reading on
    past the chunk when its last row is still open; each ends with a newline, blank ones dropped."""
    rows, pending = [], b""
    for count, line in enumerate(itertools.chain(lines, iter(more.readline, b"")), 1):
        pending += line
        if pending.count(b'"') % 2:
            continue
        if pending.strip(b"\r\n"):
            rows.append(_ended(pending))
        pending = b""
        if count >= len(lines):
            break
    if pending:
        rows.append(_ended(pending))  # a quote never closed: the parser words it
    return rows


def _ended(line: bytes) -> bytes:
    return line if line.endswith(b"\n") else line + b"\n"


def _parquet_chunks(source: IO[bytes], batch_size: int, inputs: ModelInputs) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    seekable = source if source.seekable() else pa.BufferReader(source.read())
    row = 1
    for batch in pq.ParquetFile(seekable).iter_batches(batch_size=batch_size):
        frame = pa.Table.from_batches([batch]).to_pandas().reset_index(drop=True)
        yield ParquetChunk(row, len(frame), frame)
        row += len(frame)


def _jsonl_chunks(source: IO[bytes], batch_size: int, inputs: ModelInputs) -> Iterator[Chunk]:
    lines = (line for line in source if line.strip())
    row = 1
    while batch := list(itertools.islice(lines, batch_size)):
        yield RecordsChunk(row, len(batch), _records(batch, row))
        row += len(batch)


def _records(lines: list[bytes], first_row: int) -> list[Any]:
    """The JSON value of each line; a line that is not JSON is named by its row."""
    try:
        return orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        for index, line in enumerate(lines):
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise BatchError(f"row {first_row + index}: not a JSON value ({exc})") from None
        raise


def _json_chunks(source: IO[bytes], batch_size: int, inputs: ModelInputs) -> Iterator[Chunk]:
    decoded = protocol_named(MLFLOW2).decode(RequestBody(source.read(), content_types.JSON), inputs)
    yield PayloadChunk(1, decoded.rows or 0, decoded, _as_table(decoded.data, inputs))


def _as_table(data: Any, inputs: ModelInputs) -> pd.DataFrame | None:
    """A decoded JSON input as a table: a DataFrame, or the fast path's matrix in the model's columns."""
    if isinstance(data, pd.DataFrame):
        return data.copy()
    if inputs.fast_path is not None and getattr(data, "ndim", 0) == 2:
        return pd.DataFrame(data, columns=list(inputs.fast_path.columns))
    return None
