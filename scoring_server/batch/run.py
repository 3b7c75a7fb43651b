"""A batch run: chunks read, scored (here or in worker processes, in order) and written as they come,
with a progress bar on a terminal."""
from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO

from ..pipeline import Scorer
from .readers import Chunk, input_size, read_chunks
from .scoring import ScoredChunk, score_chunk
from .writers import WRITERS, RejectsWriter, Writer


@dataclass(frozen=True)
class BatchOptions:
    """What ``predict`` was asked: paths (None: stdin, stdout), formats, rows per chunk, what a failed
    row does (``fail``, ``skip`` or ``null``), where failed rows go, worker processes, progress bar."""

    input_path: str | None
    input_format: str
    output_path: str | None
    output_format: str
    batch_size: int = 10_000
    on_error: str = "fail"
    rejects_path: str | None = None
    workers: int = 1
    progress: bool = True


@dataclass
class BatchSummary:
    """Rows read, and rows that failed (written to the rejects)."""

    rows: int = 0
    rejected: int = 0


def run_batch(scorer: Scorer, options: BatchOptions) -> BatchSummary:
    """Score the input into the output a chunk at a time; raises :class:`BatchError` naming the failed
    row (or the server's ScoringError)."""
    summary = BatchSummary()
    with ExitStack() as stack:
        stream = stack.enter_context(open(options.output_path, "wb")) if options.output_path else sys.stdout.buffer
        writer = WRITERS[options.output_format](stream)
        rejects = RejectsWriter(options.rejects_path, options.input_format) if options.rejects_path else None
        if rejects is not None:
            stack.callback(rejects.close)
        source = stack.enter_context(open(options.input_path, "rb")) if options.input_path else sys.stdin.buffer
        bar = stack.enter_context(_progress(options, source))
        chunks = read_chunks(source, options.input_path, options.input_format, options.batch_size, scorer.inputs)
        for chunk, scored in _scored(scorer, chunks, options):
            _write(writer, rejects, chunk, scored, options.on_error)
            summary.rows += chunk.size
            summary.rejected += len(scored.failures)
            bar.advance(chunk.size)
        writer.close()
        stream.flush()
    return summary


def _write(writer: Writer, rejects: RejectsWriter | None, chunk: Chunk, scored: ScoredChunk, on_error: str) -> None:
    """The chunk's rows (with ``skip``, only those that scored), and its failed rows to the rejects."""
    if not scored.failures:
        writer.write(writer.inputs_of(chunk), scored.predictions, chunk.size, None)
        return
    if on_error == "null":
        writer.write(writer.inputs_of(chunk), scored.predictions, chunk.size, scored.good)
    elif scored.good:
        writer.write(writer.inputs_of(chunk, scored.good), scored.predictions, len(scored.good), None)
    if rejects is not None:
        rejects.write(chunk.frame([failure.position for failure in scored.failures]), chunk.first_row,
                      scored.failures)


def _scored(scorer: Scorer, chunks: Iterator[Chunk], options: BatchOptions) -> Iterator[tuple[Chunk, ScoredChunk]]:
    if options.workers <= 1:
        for chunk in chunks:
            yield chunk, score_chunk(scorer, chunk, options.on_error)
        return
    yield from _scored_in_workers(scorer, chunks, options)


_worker_scorer: Scorer | None = None  # the scorer a forked worker inherits


def _score_in_worker(chunk: Chunk, on_error: str) -> ScoredChunk:
    return score_chunk(_worker_scorer, chunk, on_error)


def _scored_in_workers(scorer: Scorer, chunks: Iterator[Chunk],
                       options: BatchOptions) -> Iterator[tuple[Chunk, ScoredChunk]]:
    """Chunks scored by ``workers`` forked processes (each inherits the loaded model), in input order;
    at most two chunks per worker are in flight, so memory stays bounded."""
    import multiprocessing

    global _worker_scorer
    _worker_scorer = scorer
    pending: deque = deque()
    with multiprocessing.get_context("fork").Pool(options.workers) as pool:
        for chunk in chunks:
            pending.append((chunk, pool.apply_async(_score_in_worker, (chunk, options.on_error))))
            if len(pending) >= 2 * options.workers:
                chunk, result = pending.popleft()
                yield chunk, result.get()
        while pending:
            chunk, result = pending.popleft()
            yield chunk, result.get()


class _Progress:
    """Rows done, rows/s and ETA on stderr (tqdm), when it is a terminal. The total is Parquet's row
    count, or estimated from the bytes read so far of a file."""

    def __init__(self, options: BatchOptions, source: IO[bytes]) -> None:
        from tqdm import tqdm

        self.rows, self.bytes = input_size(options.input_path, options.input_format)
        self.source = source
        self.done = 0
        self.bar = tqdm(total=self.rows, unit=" rows", unit_scale=True, file=sys.stderr, dynamic_ncols=True)

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.rows is None and self.bytes:
            self.bar.total = max(self.done, int(self.done * self.bytes / max(self.source.tell(), 1)))
        self.bar.update(rows)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


class _Silent:
    def advance(self, rows: int) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _progress(options: BatchOptions, source: IO[bytes]) -> _Progress | _Silent:
    return _Progress(options, source) if options.progress and sys.stderr.isatty() else _Silent()
