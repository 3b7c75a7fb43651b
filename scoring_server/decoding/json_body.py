"""JSON bodies: bytes to a Python value, fast, with MLflow's tolerance for BOMs and UTF-16."""
from __future__ import annotations

import json
import re
from typing import Any

import orjson

from ..errors import invalid_input
from .limits import DecodeLimits, brackets, json_depth_exceeds, too_large

_UTF8_BOM = b"\xef\xbb\xbf"
_NON_FINITE_LITERAL = re.compile(rb"NaN|Infinity")


def parse_json(body: bytes) -> Any:
    """Parse a JSON request body; invalid JSON (or nesting deeper than 1024) is a 400."""
    text = _as_utf8(body)
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        if _NON_FINITE_LITERAL.search(bytes(text) if not isinstance(text, str) else text.encode()):
            return _parse_with_non_finite_literals(text, exc)
        raise _invalid_json(exc) from None


def _parse_with_non_finite_literals(text: bytes | memoryview | str, orjson_error: Exception) -> Any:
    """What Python's ``json.dumps`` (and ``requests``' ``json=``) write by default, and MLflow
    reads: ``NaN``, ``Infinity`` and ``-Infinity`` literals. Only bodies orjson refuses come here,
    so well-formed JSON keeps the fast parser."""
    try:
        return json.loads(bytes(text) if isinstance(text, memoryview) else text)
    except RecursionError:
        raise _invalid_json(orjson_error) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid_json(exc) from None


def _invalid_json(exc: Exception) -> Exception:
    return invalid_input(f"Ensure that input is a valid JSON formatted string. Error: '{exc}'")


def check_before_parsing(body: bytes, limits: DecodeLimits) -> int:
    """Refuse a body with more lists and objects than ``limits`` let it decode into, before it is
    parsed (parsing costs about 80 bytes a list, ``[],`` being 3 bytes of body); return the
    count of brackets, for :func:`check_json_depth`.

    A request's lists and objects are its rows, the values of its cells that are lists or objects,
    and a few wrappers: at most ``max_rows + max_cells`` (+ 64). Brackets inside strings count too,
    so this is an upper bound; only a body over it even by that count is refused here."""
    opened = brackets(body)
    if limits.max_cells is not None:
        allowed = limits.max_cells + (limits.max_rows or 0) + 64
        if opened > allowed:
            raise too_large(f"The JSON body holds {opened:,} lists and objects; a request of at most "
                            f"{limits.max_rows or 0:,} rows and {limits.max_cells:,} cells holds at most {allowed:,}",
                            "max_cells")
    return opened


def check_json_depth(value: Any, max_depth: int, opened: int | None = None) -> None:
    """A 400 when the JSON ``value`` nests lists and objects deeper than ``max_depth`` (``opened``:
    the brackets of its body, if counted): deeper values are not data any model takes, and the code
    that walks them recursively (encoding an answer that echoes them, for one) must not run out of
    stack."""
    if json_depth_exceeds(value, max_depth, opened):
        raise too_large(f"Invalid input. The JSON body nests lists and objects more than {max_depth} levels deep",
                        "max_json_depth", advice="")


def _as_utf8(body: bytes) -> bytes | memoryview | str:
    """UTF-8 bytes pass through untouched; a UTF-8 BOM is dropped (without copying the body);
    UTF-16/32 is transcoded."""
    if body.startswith(_UTF8_BOM):
        return memoryview(body)[len(_UTF8_BOM):]
    if body[:1] in (b"\xff", b"\xfe") or b"\x00" in body[:4]:
        return body.decode(json.detect_encoding(body))
    return body
