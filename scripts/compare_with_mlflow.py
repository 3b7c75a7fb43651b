"""Differential check: send the same requests to `mlflow models serve` and to scoring-server on the
same model, and list every answer whose status, error_code or predictions differ.

    python scripts/compare_with_mlflow.py --mlflow-python .bench/mlflow/bin/python [--model iris|day_models]

(scripts/bench.sh creates .bench/mlflow.) Both servers run on loopback ports with one worker; the
exit status is the number of differing answers (0: same answers everywhere).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
from bench import MODELS, Target, mlflow, ours  # noqa: E402

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = [5.1, 3.5, 1.4, 0.2]
DAY = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 2.0, 3.0]]}}

CASES = {
    "iris": {
        "split": {"dataframe_split": {"columns": IRIS, "data": [ROW]}},
        "split_index": {"dataframe_split": {"columns": IRIS, "data": [ROW], "index": [5]}},
        "records": {"dataframe_records": [dict(zip(IRIS, ROW))]},
        "instances_rows": {"instances": [ROW]},
        "inputs_rows": {"inputs": [ROW]},
        "inputs_scalars": {"inputs": dict(zip(IRIS, ROW))},
        "bool_value": {"dataframe_split": {"columns": IRIS, "data": [[True, 3.5, 1.4, 0.2]]}},
        "numeric_string": {"dataframe_split": {"columns": IRIS, "data": [["5.1", 3.5, 1.4, 0.2]]}},
        "text_value": {"dataframe_split": {"columns": IRIS, "data": [["a", 3.5, 1.4, 0.2]]}},
        "null_value": {"dataframe_split": {"columns": IRIS, "data": [[None, 3.5, 1.4, 0.2]]}},
        "nested_value": {"dataframe_split": {"columns": IRIS, "data": [[[1], 3.5, 1.4, 0.2]]}},
        "extra_column": {"dataframe_split": {"columns": [*IRIS, "x"], "data": [[*ROW, 1]]}},
        "missing_columns": {"dataframe_split": {"columns": ["x", "y"], "data": [[1, 2]]}},
        "no_columns": {"dataframe_split": {"data": [ROW]}},
        "wrong_width": {"dataframe_split": {"columns": IRIS, "data": [[1, 2]]}},
        "empty_rows": {"dataframe_split": {"columns": IRIS, "data": []}},
        "empty_records": {"dataframe_records": []},
        "ragged_inputs": {"inputs": {"sepal_length": [1, 2], "sepal_width": [1]}},
        "two_format_keys": {"dataframe_split": {"columns": IRIS, "data": [ROW]}, "instances": [ROW]},
        "no_format_key": {"foo": 1},
        "llm_key": {"messages": [{"role": "user", "content": "hi"}]},
        "top_level_list": [1, 2],
        "params_without_schema": {"dataframe_split": {"columns": IRIS, "data": [ROW]}, "params": {"x": 1}},
    },
    "day_models": {
        **{f"params_{name}": dict(DAY, params=params) for name, params in {
            "tuesday": {"day_of_week": "Tuesday"}, "int": {"day_of_week": 5}, "null": {"day_of_week": None},
            "list": ["x"], "string": "Tuesday", "list_value": {"day_of_week": ["Tuesday"]},
            "bool": {"day_of_week": True}, "model_raises": {"day_of_week": "Sunday"}, "unknown": {"foo": 1},
        }.items()},
        "default_param": DAY,
        "empty_rows": {"dataframe_split": {"columns": ["a", "b", "c"], "data": []}},
    },
}


def answer(port: int, body) -> tuple:
    """(status, predictions or error_code) of one JSON request."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    payload = json.loads(text)
    return status, payload.get("predictions", payload.get("error_code")) if isinstance(payload, dict) else payload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-python", required=True, help="python of a virtualenv with mlflow installed")
    parser.add_argument("--model", choices=sorted(CASES), default="iris")
    args = parser.parse_args()
    bin_dir = str(Path(args.mlflow_python).parent)
    servers = [Target("mlflow", mlflow(args.mlflow_python), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}),
               Target("ours", ours(sys.executable, []))]
    differences = 0
    try:
        for server in servers:
            server.start_model(args.model, workers=1)
        for name, body in CASES[args.model].items():
            theirs, mine = (answer(server.port, body) for server in servers)
            same = theirs == mine
            differences += not same
            print(f"{'same' if same else 'DIFF':4}  {name:24} mlflow={theirs}  ours={mine}")
    finally:
        for server in servers:
            server.stop()
    print(f"{differences} of {len(CASES[args.model])} answers differ (model {MODELS / args.model})")
    return differences


if __name__ == "__main__":
    sys.exit(main())
