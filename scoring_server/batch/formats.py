"""Input and output formats: named by ``-t``/``--output-format`` or by the file's extension."""
from __future__ import annotations

from pathlib import Path

INPUT_FORMATS = ("csv", "jsonl", "json", "parquet")
OUTPUT_FORMATS = ("csv", "jsonl", "json", "parquet")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
               ".parquet": "parquet", ".pq": "parquet"}


class BatchError(Exception):
    """A batch run that cannot go on; its message is one line for the command line."""


def format_of(path: str | None, given: str | None) -> str:
    """The format ``given``, else the one of ``path``'s extension, else JSON (what ``predict`` always read
    and wrote, and MLflow's default)."""
    if given:
        return given
    return _EXTENSIONS.get(Path(path).suffix.lower(), "json") if path else "json"


def parse_failure(fmt: str, path: str | None, error: Exception) -> BatchError:
    """A parse error, with the format the input's first bytes suggest when it is another one."""
    where = path or "stdin"
    message = f"cannot read {where} as {fmt}: {str(error).strip().splitlines()[0] if str(error).strip() else error!r}"
    guess = guess_format(_head(path)) if path else None
    if guess and guess != fmt:
        message += f" (it looks like {guess.upper() if guess != 'jsonl' else 'JSON Lines'}: use -t {guess})"
    return BatchError(message)


def guess_format(head: bytes) -> str | None:
    """The format that a file starting with ``head`` most likely is."""
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip()
    if text.startswith((b"{", b"[")):
        lines = [line for line in text.splitlines() if line.strip()]
        return "jsonl" if len(lines) > 1 and all(line.lstrip().startswith(b"{") for line in lines[:2]) \
            and lines[0].rstrip().endswith(b"}") else "json"
    first = text.split(b"\n", 1)[0]
    return "csv" if b"," in first else None


def _head(path: str, size: int = 4096) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""
