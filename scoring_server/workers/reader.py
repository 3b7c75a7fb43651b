"""When has a whole request arrived? Decided by the event loop from the bytes received so far,
so that a thread is given a request only once nothing more has to come from the client.

This is not a parser: gunicorn's parses the request afterwards, from these same bytes, and raises
its errors (answered as JSON). The reader only finds where the request ends: the head's blank
line, then ``Content-Length`` bytes or the last chunk of a chunked body. Whatever it cannot make
sense of (two lengths, a chunk size that is not hex, a head over gunicorn's limits) is handed over
at once, for gunicorn's parser to refuse; a body over ``max_body`` too, for the app's 413.
"""
from __future__ import annotations

import re

#: ``feed`` results.
MORE = 0       # the request is not whole yet
WHOLE = 1      # the request is whole (bytes after it are the next, pipelined, request)
AT_ONCE = 2    # hand it over as it is: the parser or the app refuses it without reading more

_CHUNK_LINE_MAX = 4096
# The fields that say where a request ends (names are case-insensitive); the request line never
# matches, as each field follows a CRLF.
_FRAMING_FIELDS = re.compile(rb"\r\n(content-length|transfer-encoding|expect)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_HEX = frozenset(b"0123456789abcdefABCDEF")


class RequestReader:
    """Finds the end of one request in a growing buffer; reset with :meth:`reset` for the next one."""

    __slots__ = (
        "_scanned",
        "body_end",
        "chunk_pos",
        "chunked_size",
        "expects_continue",
        "has_body",
        "head_end",
        "max_body",
        "max_head",
        "max_line",
    )

    def __init__(self, max_line: int, max_head: int, max_body: int) -> None:
        self.max_line, self.max_head, self.max_body = max_line, max_head, max_body
        self.reset()

    def reset(self) -> None:
        self.head_end = -1          # index just after the head's blank line
        self.body_end = -1          # index just after the body, once known
        self.chunk_pos = -1         # chunked body: where the next chunk-size line starts
        self.chunked_size = 0
        self.expects_continue = False
        self.has_body = False
        self._scanned = 0

    @property
    def in_body(self) -> bool:
        return self.head_end >= 0

    def feed(self, buffer: bytearray) -> int:
        """``MORE``, ``WHOLE`` or ``AT_ONCE`` for the bytes received so far."""
        if self.head_end < 0:
            end = buffer.find(b"\r\n\r\n", max(self._scanned - 3, 0))
            if end < 0:
                self._scanned = len(buffer)
                first_line = buffer.find(b"\n")
                if (first_line < 0 and len(buffer) > self.max_line + 2) or len(buffer) > self.max_head \
                        or buffer.find(b"\n\n") >= 0:
                    return AT_ONCE  # the parser answers 414, 431 or 400
                return MORE
            self.head_end = end + 4
            state = self._framing(bytes(buffer[:end]))
            if state != MORE:
                return state
        if self.chunk_pos >= 0:
            return self._chunks(buffer)
        return WHOLE if len(buffer) >= self.body_end else MORE

    def _framing(self, head: bytes) -> int:
        lengths, codings, expect = [], [], False
        for name, value in _FRAMING_FIELDS.findall(head):
            name = name.lower()
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings.append(value.strip().lower())
            else:
                expect = value.strip().lower() == b"100-continue"
        http11 = head[:head.find(b"\r\n")].endswith(b"HTTP/1.1") if b"\r\n" in head else head.endswith(b"HTTP/1.1")
        if codings:
            if lengths or not b",".join(codings).rstrip().endswith(b"chunked"):
                return AT_ONCE  # ambiguous or unsupported framing: the parser refuses it
            self.chunk_pos, self.has_body = self.head_end, True
        elif lengths:
            if len(lengths) > 1 or not lengths[0].isdigit():
                return AT_ONCE
            length = int(lengths[0])
            if length > self.max_body:
                return AT_ONCE  # the app answers 413 without reading the body
            self.body_end, self.has_body = self.head_end + length, length > 0
        else:
            self.body_end = self.head_end
        self.expects_continue = expect and http11 and self.has_body
        return MORE

    def _chunks(self, buffer: bytearray) -> int:
        pos = self.chunk_pos
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                return AT_ONCE if len(buffer) - pos > _CHUNK_LINE_MAX else MORE
            size_field = bytes(buffer[pos:line_end]).split(b";", 1)[0].strip()
            if not size_field or not _HEX.issuperset(size_field) or len(size_field) > 16:
                return AT_ONCE  # the parser answers 400
            size = int(size_field, 16)
            if size == 0:  # the last chunk, then trailer fields and a blank line
                if buffer[line_end + 2:line_end + 4] == b"\r\n":
                    self.body_end = line_end + 4
                else:
                    trailer_end = buffer.find(b"\r\n\r\n", line_end + 2)
                    if trailer_end < 0:
                        self.chunk_pos = pos
                        return AT_ONCE if len(buffer) - line_end > self.max_head else MORE
                    self.body_end = trailer_end + 4
                self.chunk_pos = -1
                return WHOLE
            data_end = line_end + 2 + size
            if len(buffer) < data_end + 2:
                self.chunk_pos = pos
                # Over the limit with what arrived: the app reads it from memory and answers 413.
                arrived = self.chunked_size + len(buffer) - line_end - 2
                return AT_ONCE if arrived > self.max_body else MORE
            if buffer[data_end:data_end + 2] != b"\r\n":
                return AT_ONCE  # the parser answers 400
            self.chunked_size += size
            if self.chunked_size > self.max_body:
                return AT_ONCE
            pos = data_end + 2
            self.chunk_pos = pos
