"""Reading a request body: whole, within the size limit, and exactly as its framing says.

The one place a body is read from ``wsgi.input``:

* ``Content-Length: N``: N over the limit is a 413 before anything is read; then exactly N
  bytes are read, and fewer (the client closed early) is a 400, never a shorter body scored;
* ``Transfer-Encoding: chunked``: read to its last chunk, and one byte more than the limit is a
  413 (it is never cut at the limit and scored); bad framing (a chunk size that is not hex, a
  missing CRLF, a chunk cut short) is a 400;
* neither: no body.

gunicorn decodes the chunked framing and raises ``gunicorn.http.errors`` exceptions (or
``NoMoreData``, an ``IOError``) for bad framing; it then closes the connection rather than read
the next request from an unknown position. Werkzeug's ``request.get_data()`` is not used: with
a server that terminates the input (gunicorn) it stops at ``MAX_CONTENT_LENGTH`` without an
error, and it cannot tell a short body from a complete one.
"""
from __future__ import annotations

from typing import IO, Any

from .errors import ScoringError

try:
    from gunicorn.http.errors import ParseException as _FramingError
except ImportError:  # pragma: no cover - another WSGI server
    _FramingError = ()  # type: ignore[assignment,misc]


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body of ``environ``, at most ``limit`` bytes; a JSON-answerable
    :class:`ScoringError` (413 too large, 400 badly framed or short) otherwise."""
    declared = environ.get("CONTENT_LENGTH")
    if declared:
        length = _content_length(declared)
        if length > limit:
            raise body_too_large(limit, f" (Content-Length: {length:,})")
        body = _read(environ["wsgi.input"], length)
        if len(body) < length:
            raise ScoringError(f"The request body is shorter than its Content-Length: {len(body):,} of {length:,} "
                               "bytes arrived before the client stopped sending. Nothing was scored.")
        return body
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        body = _read(environ["wsgi.input"], limit + 1)
        if len(body) > limit:
            raise body_too_large(limit, "")
        return body
    return b""


def body_too_large(limit: int, declared: str) -> ScoringError:
    """The 413 for a body over ``limit`` bytes."""
    return ScoringError(f"The request body{declared} is larger than this server accepts: at most {limit:,} bytes "
                        "(server limit `max_request_bytes`).", status=413)


def _content_length(value: str) -> int:
    if not value.isdigit():  # gunicorn refuses these itself; other servers may not
        raise ScoringError("The request's Content-Length is not a number of bytes.")
    return int(value)


def _read(stream: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes: fewer only when the body ends first."""
    if size == 0:
        return b""
    try:
        data = stream.read(size)  # gunicorn reads until it has ``size`` bytes or the body ends
        if not data or len(data) >= size:
            return data
        parts, received = [data], len(data)
        while received < size:  # other servers' streams may return less than asked
            data = stream.read(size - received)
            if not data:
                break
            parts.append(data)
            received += len(data)
        return b"".join(parts)
    except _FramingError as exc:
        raise _badly_framed(exc) from None
    except OSError as exc:  # gunicorn's NoMoreData (a chunked body cut short), timeouts, resets
        raise _badly_framed(exc) from None


def _badly_framed(exc: Exception) -> ScoringError:
    return ScoringError(f"The request body could not be read: its chunked framing is invalid or it ended early "
                        f"({type(exc).__name__}). Nothing was scored.")
