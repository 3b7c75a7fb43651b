"""Time each step of the request pipeline in-process (no HTTP, no wrk): where a request's time goes.

    python scripts/bench/pipeline_steps.py [--repeat 5] [--number 2000]

For the iris fixture (signature) and iris_nosig (none), prints the median over --repeat runs of
the microseconds per request spent in each step of the general path (decoding to a DataFrame,
enforcing the signature, predicting on it, encoding), then the whole request through the
general path and through the numeric fast path (scoring_server/fast_path.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flavors import load_model  # noqa: E402
from scoring_server.decoding import ModelInputs, RequestBody  # noqa: E402
from scoring_server.encoding import encode_predictions  # noqa: E402
from scoring_server.pipeline import Scorer  # noqa: E402
from scoring_server.schema import enforce_input_schema, enforce_params  # noqa: E402

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def step_times(model_name: str, rows: int, repeat: int, number: int) -> dict[str, float]:
    model = load_model(str(REPO / "tests" / "fixtures" / "mlflow-models" / model_name))
    signature = model.metadata.signature
    body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]] * rows}}).encode()
    scorer, general = Scorer(model), Scorer(model)
    general.inputs = ModelInputs(model.metadata.signature)  # no fast path: the general decoders
    request = general.protocol.decode(RequestBody(body, "application/json"), general.inputs)
    data = enforce_input_schema(request.data, signature.inputs if signature else None)
    predictions = model.predict(data)
    steps = {
        "decode": lambda: general.protocol.decode(RequestBody(body, "application/json"), general.inputs),
        "enforce": lambda: (enforce_input_schema(request.data, signature.inputs if signature else None),
                            enforce_params(request.params, signature.params if signature else None)),
        "predict": lambda: model.predict(data),
        "encode": lambda: encode_predictions(predictions),
        "whole request, general path": lambda: general.score(body, "application/json"),
        "whole request, fast path": lambda: scorer.score(body, "application/json"),
    }
    return {name: statistics.median(timeit.repeat(step, repeat=repeat, number=number)) / number * 1e6
            for name, step in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1)
    args = parser.parse_args()
    results = {name: step_times(name, args.rows, args.repeat, args.number) for name in ("iris", "iris_nosig")}
    print(f"| step ({args.rows} row(s), µs/request, median of {args.repeat}) | iris (signature) | iris_nosig | difference |")
    print("|---|---|---|---|")
    for step in results["iris"]:
        with_sig, without = results["iris"][step], results["iris_nosig"][step]
        print(f"| {step} | {with_sig:.0f} | {without:.0f} | {with_sig - without:+.0f} ({(with_sig / without - 1) * 100:+.1f}%) |")


if __name__ == "__main__":
    main()
