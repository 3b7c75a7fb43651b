"""Scoring a chunk as the server scores a request (validate → predict), and, when it fails, finding
which of its rows fail by bisection: the halves that score are done with in one call each."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ScoringError, invalid_input
from ..pipeline import Scorer
from .formats import BatchError
from .readers import Chunk, Rows


@dataclass
class RowFailure:
    """A row that cannot be scored alone: its position in the chunk and why."""

    position: int
    message: str


@dataclass
class ScoredChunk:
    """The predictions of a chunk's ``good`` rows (None: all of them) and its failing rows."""

    predictions: Any
    good: list[int] | None = None
    failures: list[RowFailure] = field(default_factory=list)


def score_chunk(scorer: Scorer, chunk: Chunk, on_error: str) -> ScoredChunk:
    """The chunk's predictions; with ``on_error`` ``fail`` its first failing row raises a :class:`BatchError`
    naming it, otherwise failing rows are left out of the predictions and listed."""
    try:
        return ScoredChunk(score_rows(scorer, chunk))
    except ScoringError as error:
        if not chunk.splittable:
            raise _failed(chunk, error) from None
        failures = (_failures(scorer, chunk, list(range(chunk.size)), first_only=on_error == "fail")
                    if chunk.size > 1 else [RowFailure(0, error.one_line())])
        if not failures:  # every row scores alone: the rows fail only together
            raise _failed(chunk, error) from None
        if on_error == "fail":
            raise BatchError(f"row {chunk.first_row + failures[0].position}: {failures[0].message}") from None
    failed = {failure.position for failure in failures}
    good = [position for position in range(chunk.size) if position not in failed]
    return ScoredChunk(score_rows(scorer, chunk, good) if good else None, good, failures)


def score_rows(scorer: Scorer, chunk: Chunk, rows: Rows = None) -> Any:
    """The model's predictions for these rows, through the server's decode, validate and predict."""
    try:
        request = chunk.request(scorer.inputs, rows)
        scorer.validate(request)
    except ScoringError:
        raise
    except Exception as exc:  # as the server: input nobody foresaw is the client's error, never a crash
        raise invalid_input(f"The request could not be processed: {type(exc).__name__}: {exc}") from None
    return scorer.predict_now(request.data, request.params)


def _failures(scorer: Scorer, chunk: Chunk, rows: Sequence[int], first_only: bool) -> list[RowFailure]:
    """The rows among ``rows`` (which fail together) that fail alone, by halving."""
    if len(rows) == 1:
        message = _error_of(scorer, chunk, rows)
        return [RowFailure(rows[0], message)] if message else []
    found: list[RowFailure] = []
    middle = len(rows) // 2
    for half in (rows[:middle], rows[middle:]):
        if _error_of(scorer, chunk, half) is not None:
            found += _failures(scorer, chunk, half, first_only)
            if first_only:
                break
    return found


def _error_of(scorer: Scorer, chunk: Chunk, rows: Sequence[int]) -> str | None:
    try:
        score_rows(scorer, chunk, rows)
    except ScoringError as error:
        return error.one_line()
    return None


def _failed(chunk: Chunk, error: ScoringError) -> BatchError:
    last = chunk.first_row + chunk.size - 1
    where = f"row {last}" if chunk.size == 1 else f"rows {chunk.first_row}-{last}"
    return BatchError(f"{where}: {error.one_line()}")
