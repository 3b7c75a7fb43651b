"""How much a request may decode into: rows, cells, JSON nesting depth and decoded bytes.

The body's size is bounded before decoding (``max_request_bytes``, :mod:`scoring_server.http_body`),
but a small body can describe a huge input: a Parquet file of repeated values, CSV rows shorter
than a wide header, JSON records each naming other columns, a string tensor as wide as its
longest string. Every decoder therefore checks what it is about to build against these limits,
from what it can count cheaply (a Parquet footer, a CSV header, list lengths), before building it.

The limits of a request travel with its :class:`~scoring_server.decoding.RequestBody`; while it
is scored they are also the *active* limits (:func:`applying`), which the decoders read. Code
outside an HTTP request (the batch ``predict`` command) runs with :data:`NO_LIMITS`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain, compress
from typing import Any

from ..errors import ScoringError


@dataclass(frozen=True)
class DecodeLimits:
    """``None`` means unbounded. ``max_decoded_bytes`` bounds what a compressed body (Parquet)
    may decode to, and the fixed-width numpy array a string tensor becomes."""

    max_rows: int | None = None
    max_cells: int | None = None
    max_json_depth: int | None = None
    max_decoded_bytes: int | None = None

    @property
    def bounds_size(self) -> bool:
        return self.max_rows is not None or self.max_cells is not None or self.max_decoded_bytes is not None


NO_LIMITS = DecodeLimits()


# The active limits where a request is decoded: its thread, or its greenlet (each has its own context).
_active: ContextVar[DecodeLimits] = ContextVar("decode_limits", default=NO_LIMITS)


def active_limits() -> DecodeLimits:
    """The limits of the request being decoded (:data:`NO_LIMITS` outside a request)."""
    return _active.get()


class applying:  # used as a function: ``with applying(limits):``
    """Make ``limits`` the active limits of this request for the duration of the block (a class,
    not a generator: it runs once per request)."""

    __slots__ = ("limits", "token")

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits

    def __enter__(self) -> DecodeLimits:
        self.token = _active.set(self.limits)
        return self.limits

    def __exit__(self, *exc_info: object) -> None:
        _active.reset(self.token)


def too_large(message: str, key: str, advice: str = " Send the input in smaller requests.") -> ScoringError:
    """A 400 for input over a decode limit; ``key`` is the configuration key that sets it."""
    return ScoringError(f"{message} (server limit `{key}`).{advice}")


def check_table(rows: int, columns: int, limits: DecodeLimits, what: str = "The input", cut: bool = False,
                cells: int | None = None) -> None:
    """Refuse ``rows`` × ``columns`` (or ``cells`` when given) over ``max_rows`` or ``max_cells``.

    A table with no rows still counts one row of cells, so that a million empty columns are
    refused too; ``cut`` says reading stopped at ``rows``, so there are more."""
    if limits.max_rows is not None and rows > limits.max_rows:
        more = "more than " if cut else ""
        raise too_large(f"{what} has {more}{rows - cut:,} rows; this server accepts at most {limits.max_rows:,} "
                        "per request", "max_rows")
    counted = cells if cells is not None else max(rows, 1) * columns
    if limits.max_cells is not None and counted > limits.max_cells:
        more = "more than " if cut else ""
        described = (f"{counted:,} cells" if cells is not None else
                     f"{more}{counted - cut * columns:,} cells ({more}{rows - cut:,} rows × {columns:,} columns)")
        raise too_large(f"{what} has {described}; this server accepts at most {limits.max_cells:,} per request",
                        "max_cells")


def check_decoded_bytes(size: int, limits: DecodeLimits, what: str) -> None:
    """Refuse ``size`` bytes of decoded data over ``max_decoded_bytes``."""
    if limits.max_decoded_bytes is not None and size > limits.max_decoded_bytes:
        raise too_large(f"{what} would decode to {size:,} bytes; this server decodes at most "
                        f"{limits.max_decoded_bytes:,} bytes (4 × its body limit) per request", "max_request_bytes")


# --- JSON -----------------------------------------------------------------------------------

_CONTAINERS = (list, dict)
_LISTS = {list}
_DICTS = {dict}
_LISTS_AND_DICTS = {list, dict}


def _children(containers: list, lists_only: bool) -> Iterator[Any]:
    """Every value directly inside ``containers`` (lists and dicts; ``lists_only``: only lists)."""
    if lists_only:
        return chain.from_iterable(containers)
    return chain.from_iterable(c.values() if type(c) is dict else c for c in containers)


def _next_level(containers: list, kinds: set, lists_only: bool) -> tuple[list, bool]:
    """The lists and dicts directly inside ``containers``, whose values are of ``kinds``."""
    if kinds <= _LISTS_AND_DICTS:
        nested = list(_children(containers, lists_only))
    else:
        values = list(_children(containers, lists_only))
        nested = list(compress(values, map(_LISTS_AND_DICTS.__contains__, map(type, values))))  # at C speed
    return nested, dict not in kinds


def brackets(body: bytes) -> int:
    """How many ``[`` and ``{`` ``body`` holds: at least as many as the lists and objects it
    describes (more when strings hold some). Two scans at memchr speed."""
    return body.count(b"[") + body.count(b"{")


def json_depth_exceeds(value: Any, limit: int, opened: int | None = None) -> bool:
    """Whether the JSON ``value`` nests lists and objects more than ``limit`` deep.

    A body with no more than ``limit`` brackets (``opened``, from :func:`brackets`) cannot (the
    usual small request: no walk at all); otherwise the value is walked one level at a time, each
    level's values scanned at C speed (``map(type, ...)``), so a million flat rows cost one pass
    over their cells. The walk stops as soon as the containers found account for every bracket
    of the body, so a table's cells are never scanned.
    """
    if (opened is not None and opened <= limit) or type(value) not in _CONTAINERS:
        return False
    level, lists_only, depth, found = [value], type(value) is list, 0, 1
    while level:
        depth += 1
        if depth > limit:
            return True
        if opened is not None and found >= opened:
            return False  # every bracket of the body is a container already seen: none is deeper
        kinds = set(map(type, _children(level, lists_only)))
        if kinds.isdisjoint(_CONTAINERS):
            return False
        level, lists_only = _next_level(level, kinds, lists_only)
        found += len(level)
    return False


def scalars(values: list) -> tuple[int, int]:
    """How many scalars the list ``values`` holds at any depth, and the length of its longest string."""
    count = longest = 0
    level, lists_only = [values], True
    while level:
        size = sum(map(len, level))
        kinds = set(map(type, _children(level, lists_only)))
        if str in kinds:
            longest = max(longest, max(len(v) for v in _children(level, lists_only) if type(v) is str))
        if kinds.isdisjoint(_CONTAINERS):
            return count + size, longest
        level, lists_only = _next_level(level, kinds, lists_only)
        count += size - len(level)
    return count, longest


def row_width(rows: list) -> int:
    """The columns a list of rows spreads over: the longest list row, or every key of the
    object rows together (pandas pads rows to the union of their keys)."""
    kinds = set(map(type, rows))
    if kinds == _LISTS:  # the usual cases, at C speed
        return max(map(len, rows))
    if kinds == _DICTS:
        return len(set().union(*rows))
    width = 1 if kinds - {list, dict} else 0  # scalar rows: one column (or an error pandas words)
    if list in kinds:
        width = max(width, max(len(row) for row in rows if type(row) is list))
    if dict in kinds:
        width = max(width, len(set().union(*(row for row in rows if type(row) is dict))))
    return width
