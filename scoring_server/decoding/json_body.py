"""JSON bodies: bytes to a Python value, fast, with MLflow's tolerance for BOMs and UTF-16."""
from __future__ import annotations

import json
from typing import Any

import orjson

from ..errors import invalid_input

_UTF8_BOM = b"\xef\xbb\xbf"


def parse_json(body: bytes) -> Any:
    """Parse a JSON request body; invalid JSON (or nesting deeper than 1024) is a 400."""
    try:
        return orjson.loads(_as_utf8(body))
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid_input(f"Ensure that input is a valid JSON formatted string. Error: '{exc}'") from None


def _as_utf8(body: bytes) -> bytes | str:
    """UTF-8 bytes pass through untouched; a UTF-8 BOM is dropped; UTF-16/32 is transcoded."""
    if body.startswith(_UTF8_BOM):
        return body[len(_UTF8_BOM):]
    if body[:1] in (b"\xff", b"\xfe") or b"\x00" in body[:4]:
        return body.decode(json.detect_encoding(body))
    return body
