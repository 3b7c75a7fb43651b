"""The shell and Python blocks of the documentation, and the bash script that runs one document's
blocks in order, as a reader pasting them would (tests/test_docs_run.py).

A block preceded by ``<!-- not run: REASON -->`` is not run (docker, a real certificate authority,
the test suite itself): the test lists those, so that they stay few.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUN_LANGUAGES = {"bash": "shell", "sh": "shell", "console": "console", "python": "python"}
FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->$")
SERVE = re.compile(r"^(\s*)scoring-server serve\b(.*)$")
DOCUMENTED_PORT = re.compile(r"\b5000\b")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and code, and why it is not run (if it is not)."""

    document: Path
    line: int
    language: str
    code: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.document.name}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.language in RUN_LANGUAGES and self.not_run is None


def blocks(document: Path) -> list[Block]:
    """Every fenced block of ``document``, with the ``not run`` mark of the line before it."""
    found: list[Block] = []
    lines = document.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        previous = lines[index - 1].strip() if index else ""
        mark = NOT_RUN.match(previous)
        found.append(Block(document, index + 1, opening.group(1), "\n".join(lines[index + 1:end]),
                           mark.group(1) if mark else None))
        index = end + 1
    return found


def shell_code(block: Block) -> str:
    """The commands of a shell block (a console block's ``$ `` lines), continuation lines joined."""
    code = block.code
    if RUN_LANGUAGES[block.language] == "console":
        code = "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))
    return code.replace("\\\n", " ")


def placeholders(block: Block) -> list[str]:
    """Lines whose code (not their comment) holds a ``...`` placeholder."""
    return [line for line in block.code.splitlines() if "..." in re.split(r"\s#", line, maxsplit=1)[0]]


def with_background_servers(code: str) -> str:
    """``scoring-server serve ARGS`` (foreground or ``&``) becomes ``__serve ARGS``: a background
    start that waits for ``/ping`` and stops the document's previous server first."""
    lines = []
    for line in code.splitlines():
        serve = SERVE.match(line)
        if serve:
            arguments = re.sub(r"\s+#.*$", "", serve.group(2)).rstrip().removesuffix("&").rstrip()
            line = f"{serve.group(1)}__serve{arguments}"
        lines.append(line)
    return "\n".join(lines)


PRELUDE = r"""
set -eu
__serve() {
  __stop
  scoring-server serve "$@" >>"$__LOGS/server.log" 2>&1 &
  __SERVER=$!
  local scheme=http; case " $* " in *" --certfile "*) scheme=https;; esac
  for _ in $(seq 1 600); do
    if [ "$(curl -sk -o /dev/null -w '%{http_code}' "$scheme://127.0.0.1:$SCORING_SERVER_PORT/ping")" = 200 ]; then
      return 0
    fi
    if ! kill -0 "$__SERVER" 2>/dev/null; then
      echo "scoring-server serve $* exited:" >&2; tail -n 20 "$__LOGS/server.log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "scoring-server serve $* did not answer /ping within 60 s" >&2; return 1
}
__stop() {
  if [ -n "${__SERVER:-}" ]; then kill -TERM "$__SERVER" 2>/dev/null || true; wait "$__SERVER" || true; fi
  __SERVER=
}
trap __stop EXIT
"""


def script(document: Path, port: int) -> str:
    """One bash script running the runnable blocks of ``document`` in order, each block's output
    in ``$__LOGS/block-LINE.out``; the line of the block running is in ``$__LOGS/current``."""
    parts = [PRELUDE]
    for block in blocks(document):
        if not block.runnable:
            continue
        code = DOCUMENTED_PORT.sub(str(port), block.code if block.language == "python" else shell_code(block))
        if block.language == "python":
            code = f"python - <<'__PYTHON_BLOCK__'\n{code}\n__PYTHON_BLOCK__"
        else:
            code = with_background_servers(code)
        output = f'"$__LOGS/block-{block.line}.out"'
        parts.append(f"echo {block.line} >\"$__LOGS/current\"\nexec >{output} 2>&1\n{code}\n")
    parts.append('echo done >"$__LOGS/current"\n')
    return "\n".join(parts)
