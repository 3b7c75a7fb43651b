"""Peak memory of one request, per body format and size: what a worker needs beyond the body.

    python scripts/bench/decode_memory.py [--sizes 10,100] [--formats split,records,inputs,csv,parquet]
                                          [--worker-class thread|sync]

For each format and size a fresh `scoring-server serve` (one sync worker, the iris fixture,
limits raised so that the body is accepted) gets one request. Just before it the worker's peak
RSS is reset (``/proc/PID/clear_refs``, Linux); after it the peak (VmHWM) less the resident size
before is what the request cost: reading the body through gunicorn, decoding, the signature,
predicting and encoding. The table gives it in MB and as a multiple of the body size, the
number docs/security.md multiplies by workers × threads × ``max_request_bytes``.
"""
from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "tests" / "fixtures" / "mlflow-models" / "iris"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MB = 1024 * 1024
FORMATS = ("split", "records", "inputs", "csv", "parquet")


def frame(rows: int) -> pd.DataFrame:
    """Iris-like rows: one decimal place, as measured flowers are written."""
    values = np.random.default_rng(0).integers(1, 80, size=(rows, len(COLUMNS))) / 10
    return pd.DataFrame(values, columns=COLUMNS)


def body_of(fmt: str, rows: int) -> tuple[bytes, str]:
    data = frame(rows)
    if fmt == "split":
        return json.dumps({"dataframe_split": data.to_dict(orient="split", index=False)}).encode(), "application/json"
    if fmt == "records":
        return json.dumps({"dataframe_records": data.to_dict(orient="records")}).encode(), "application/json"
    if fmt == "inputs":
        return json.dumps({"inputs": data.to_dict(orient="list")}).encode(), "application/json"
    if fmt == "csv":
        return data.to_csv(index=False).encode(), "text/csv"
    sink = io.BytesIO()  # random doubles: Parquet cannot compress them much
    pd.DataFrame(np.random.default_rng(0).random((rows, len(COLUMNS))), columns=COLUMNS).to_parquet(sink, index=False)
    return sink.getvalue(), "application/vnd.apache.parquet"


def body_of_size(fmt: str, size: int) -> tuple[bytes, str, int]:
    """A body of about ``size`` bytes, its Content-Type and its rows."""
    sample, _ = body_of(fmt, 10_000)
    rows = max(1, int(10_000 * size / len(sample)))
    return (*body_of(fmt, rows), rows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid``, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def post(port: int, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": content_type})
    try:
        return urllib.request.urlopen(request, timeout=600).status
    except urllib.error.HTTPError as error:
        return error.code


def measure(body: bytes, content_type: str, warm_up: bytes, worker_class: str = "thread") -> tuple[int, float, int]:
    """(HTTP status, seconds, peak bytes above the worker's resident size) for one request, after
    a small request of the same format (so that first-use costs, lazy imports, are not counted)."""
    port = free_port()
    limit = str(2 * len(body))
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "scoring_server", "serve", "-m", str(MODEL), "-p", str(port), "-w", "1",
             "-t", "600", "--worker-class", worker_class, "--max-request-bytes", limit, "--max-rows", "100000000", "--max-cells", "1000000000"],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
                    break
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline or server.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(log.read().decode()) from None
                    time.sleep(0.1)
            (worker,) = children(server.pid)
            if post(port, warm_up, content_type) != 200:
                raise RuntimeError("the warm-up request failed")
            Path(f"/proc/{worker}/clear_refs").write_text("5")  # reset the peak to the current size
            before = status(worker)["VmRSS"]
            started = time.monotonic()
            code = post(port, body, content_type)
            seconds = time.monotonic() - started
            return code, seconds, status(worker)["VmHWM"] - before
        finally:
            server.terminate()
            server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="body sizes in MB, comma-separated")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--worker-class", default="thread", choices=["thread", "sync"])
    args = parser.parse_args()
    print(f"worker class {args.worker_class}; peak resident memory of the worker during one request, above "
          "its size before it\n")
    print("| format | body MB | rows | status | seconds | peak MB above the worker | multiple of the body |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for fmt in args.formats.split(","):
        for size in (float(s) for s in args.sizes.split(",")):
            body, content_type, rows = body_of_size(fmt, int(size * MB))
            code, seconds, peak = measure(body, content_type, body_of(fmt, 100)[0], args.worker_class)
            print(f"| {fmt} | {len(body) / MB:.1f} | {rows:,} | {code} | {seconds:.1f} | {peak / MB:,.0f} | "
                  f"{peak / len(body):.1f} |", flush=True)
            del body


if __name__ == "__main__":
    main()
