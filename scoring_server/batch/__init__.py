"""Streaming batch scoring (``scoring-server predict``): a file of any size, read and scored a chunk of
rows at a time through the server's own decode → validate → predict → encode rules, written as it goes.

``formats`` names input and output formats (and guesses one when parsing fails), ``readers`` cuts the
input into :class:`~.readers.Chunk` s, ``scoring`` scores a chunk and finds its failing rows, ``writers``
writes predictions, and ``run`` ties them together with progress and worker processes.
"""
from .formats import BatchError
from .run import BatchOptions, BatchSummary, run_batch

__all__ = ["BatchError", "BatchOptions", "BatchSummary", "run_batch"]
