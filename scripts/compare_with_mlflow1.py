"""Differential check of the legacy protocol: send the same requests to MLflow 1.30.1's
`mlflow models serve` and to `scoring-server serve --protocol mlflow1`, on the same model, and list
every answer whose status, error_code or predictions differ.

    python scripts/compare_with_mlflow1.py --mlflow-python .bench/mlflow130/bin/python

The model is an iris LogisticRegression saved by MLflow 1.30's own `mlflow.sklearn.save_model`
(in the given virtualenv, which needs mlflow==1.30.1 and scikit-learn; scripts/test.sh creates
.bench/mlflow130). The corpus is every legacy Content-Type (media types, `format=` and other
parameters) × every body (each 1.x JSON shape, 2.x wrappers, numpy-split, CSV, bad values). Both
servers run on loopback ports with one worker. The exit status is the number of differing answers
beyond the deliberate differences listed in `DELIBERATE` (0: same answers everywhere else).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
from bench import COLUMNS, ROW, Target, ours

ROW2 = [6.7, 3.0, 5.2, 2.3]
RECORD = dict(zip(COLUMNS, ROW))
SPLIT = {"columns": COLUMNS, "data": [ROW]}

SAVE_MODEL = f"""
import sys
import mlflow.sklearn
from mlflow.models.signature import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
features, target = load_iris(return_X_y=True, as_frame=True)
features.columns = {COLUMNS!r}
model = LogisticRegression(max_iter=500).fit(features, target)
mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(features, model.predict(features)))
"""

CONTENT_TYPES = [
    "application/json",
    "application/json; format=pandas-split",
    "application/json; format=pandas-records",
    "application/json; format=",
    "application/json; format=pandas-columns",
    "application/json; charset=utf-8",
    "application/json; charset=UTF-8; format=pandas-split",
    "application/json; charset=latin-1",
    "application/json; foo=bar",
    "application/json; Format=pandas-records",
    "application/json;",
    "Application/JSON",
    "application/json-numpy-split",
    "application/json-numpy-split; format=pandas-split",
    "application/json-numpy-split; format=pandas-records",
    "application/json-numpy-split; charset=utf-8",
    "text/csv",
    "text/csv; format=pandas-split",
    "text/csv; format=pandas-records",
    "text/csv; charset=utf-8",
    "text/csv; foo=bar",
    "application/csv",
    "text/plain",
    "application/vnd.apache.parquet",
]

JSON_BODIES = {
    "split": SPLIT,
    "split_index": dict(SPLIT, index=[7]),
    "split_two_rows": {"columns": COLUMNS, "data": [ROW, ROW2]},
    "split_extra_key": dict(SPLIT, orient="split"),
    "split_no_columns": {"data": [ROW]},
    "split_missing_columns": {"columns": ["x"], "data": [[1.0]]},
    "split_extra_column": {"columns": [*COLUMNS, "x"], "data": [[*ROW, 1.0]]},
    "split_wrong_width": {"columns": COLUMNS, "data": [[1.0, 2.0]]},
    "split_text_value": {"columns": COLUMNS, "data": [["a", 3.5, 1.4, 0.2]]},
    "split_null_value": {"columns": COLUMNS, "data": [[None, 3.5, 1.4, 0.2]]},
    "split_int_values": {"columns": COLUMNS, "data": [[5, 3, 1, 0]]},
    "split_numeric_string": {"columns": COLUMNS, "data": [["5.1", 3.5, 1.4, 0.2]]},
    "split_bool_value": {"columns": COLUMNS, "data": [[True, 3.5, 1.4, 0.2]]},
    "split_nested_value": {"columns": COLUMNS, "data": [[[1.0], 3.5, 1.4, 0.2]]},
    "split_empty_data": {"columns": COLUMNS, "data": []},
    "records": [RECORD],
    "records_two": [RECORD, dict(zip(COLUMNS, ROW2))],
    "records_missing_column": [{"sepal_length": 5.1}],
    "instances_records": {"instances": [RECORD]},
    "instances_rows": {"instances": [ROW]},
    "inputs_rows": {"inputs": [ROW]},
    "inputs_columns": {"inputs": {name: [value] for name, value in RECORD.items()}},
    "wrapper_split": {"dataframe_split": SPLIT},
    "wrapper_records": {"dataframe_records": [RECORD]},
    "numpy_split": {"columns": COLUMNS, "index": [0], "data": [ROW]},
    "numpy_split_two_rows": {"columns": COLUMNS, "index": [0, 1], "data": [ROW, ROW2]},
    "numpy_split_no_index": SPLIT,
    "numpy_split_no_columns": {"index": [0], "data": [ROW]},
    "list_of_numbers": [1, 2],
    "empty_object": {},
}
RAW_BODIES = {
    "invalid_json": b'{"columns": [',
    "scalar_json": b"5",
    "csv": (",".join(COLUMNS) + "\n5.1,3.5,1.4,0.2\n").encode(),
    "csv_two_rows": (",".join(COLUMNS) + "\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n").encode(),
    "csv_text_value": (",".join(COLUMNS) + "\na,3.5,1.4,0.2\n").encode(),
    "csv_missing_column": b"sepal_length\n5.1\n",
    "csv_header_only": (",".join(COLUMNS) + "\n").encode(),
}

#: Where this server answers differently on purpose: (body name, content type) → why. Checked to
#: still differ, so that the list stays true.
DELIBERATE: dict[tuple[str, str], str] = {}


def corpus() -> list[tuple[str, str, bytes]]:
    """(body name, Content-Type, body) for every body under every content type."""
    bodies = {**{name: json.dumps(body).encode() for name, body in JSON_BODIES.items()}, **RAW_BODIES}
    return [(name, content_type, body) for content_type in CONTENT_TYPES for name, body in bodies.items()]


def answer(port: int, content_type: str, body: bytes) -> tuple:
    """(status, bare predictions | error_code | "text" for a non-JSON error) of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        status, text = response.status, response.read().decode()
    finally:
        connection.close()
    try:
        payload = json.loads(text)
    except ValueError:
        return status, "text"
    if status == 200:
        return status, payload
    return status, payload.get("error_code") if isinstance(payload, dict) else payload


def same(theirs: tuple, mine: tuple) -> bool:
    """Equal answers; MLflow 1.x's plain-text errors (415) are compared by status alone."""
    return theirs == mine or (theirs[1] == "text" and theirs[0] == mine[0])


def mlflow1(mlflow_python: str):
    """The command of `mlflow models serve` in that virtualenv (1.x has no `python -m mlflow`)."""
    executable = str(Path(mlflow_python).parent / "mlflow")
    return lambda model, port, workers: [executable, "models", "serve", "-m", str(model), "-h", "127.0.0.1",
                                         "-p", str(port), "-w", str(workers), "--env-manager", "local"]


def save_model(mlflow_python: str, path: Path) -> None:
    subprocess.run([mlflow_python, "-c", SAVE_MODEL, str(path)], check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-python", required=True, help="python of a virtualenv with mlflow==1.30.1")
    parser.add_argument("--verbose", action="store_true", help="print every case, not only the differences")
    args = parser.parse_args()
    bin_dir = str(Path(args.mlflow_python).parent)
    with tempfile.TemporaryDirectory() as root:
        save_model(args.mlflow_python, Path(root) / "iris")
        servers = [Target("mlflow", mlflow1(args.mlflow_python), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
                          models=Path(root)),
                   Target("ours", ours(sys.executable, ["--protocol", "mlflow1"]), models=Path(root))]
        try:
            for server in servers:
                server.start_model("iris", workers=1)
            return compare(servers, args.verbose)
        finally:
            for server in servers:
                server.stop()


def compare(servers: list[Target], verbose: bool) -> int:
    """Print the differing answers (and deliberate ones that no longer differ); their count."""
    cases = corpus()
    unexplained = 0
    for name, content_type, body in cases:
        theirs, mine = (answer(server.port, content_type, body) for server in servers)
        why = DELIBERATE.get((name, content_type))
        differs = not same(theirs, mine)
        if differs != (why is not None):
            unexplained += 1
        if verbose or differs != (why is not None):
            label = "same" if not differs else ("DELIBERATE" if why else "DIFF")
            print(f"{label:10} {name:24} {content_type!r:56} mlflow={theirs}  ours={mine}")
    print(f"{unexplained} unexplained differences in {len(cases)} cases ({len(DELIBERATE)} deliberate)")
    return unexplained


if __name__ == "__main__":
    sys.exit(main())
