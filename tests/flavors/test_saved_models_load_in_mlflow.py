"""Every kind of model our save API writes loads in real MLflow 3.17 with the same predictions, and
carries the signature MLflow's own save writes for the same model and input example.

Runs tests/flavors/mlflow_resave.py with .bench/mlflow's Python (created by scripts/test.sh).
"""
from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from flavors import LoadingPolicy, load_model
from flavors.python_function import save_model as save_pyfunc
from flavors.python_model import PythonModel
from flavors.sklearn import save_model as save_sklearn

REPO = Path(__file__).resolve().parents[2]
MLFLOW_PYTHON = REPO / ".bench" / "mlflow" / "bin" / "python"
TREE = "sklearn.tree._tree.Tree"

pytestmark = pytest.mark.heavy


def frame_case(frame: pd.DataFrame) -> dict:
    split = frame.to_dict(orient="split")  # each column's values keep their type
    return {"frame": {"columns": split["columns"], "data": split["data"]}}


def sklearn_cases(folder: Path) -> list[dict]:
    features, target = load_iris(return_X_y=True, as_frame=True)
    example = features.head(3)
    logistic = LogisticRegression(max_iter=500).fit(features, target)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(features, target)
    cases = []
    for fmt in ("cloudpickle", "pickle", "skops"):
        save_sklearn(logistic, folder / f"logistic-{fmt}", serialization_format=fmt, input_example=example)
        cases.append({"path": str(folder / f"logistic-{fmt}"), "kind": "sklearn", "format": fmt, **frame_case(example)})
    save_sklearn(forest, folder / "forest-skops", serialization_format="skops", skops_trusted_types=[TREE],
                 input_example=example)
    cases.append({"path": str(folder / "forest-skops"), "kind": "sklearn", "format": "skops", "trusted": [TREE],
                  **frame_case(example)})
    array = example.to_numpy()
    save_sklearn(logistic, folder / "logistic-array", input_example=array)
    cases.append({"path": str(folder / "logistic-array"), "kind": "sklearn", "format": "cloudpickle",
                  "array": array.tolist()})
    return cases


def custom_cases(folder: Path) -> list[dict]:
    code = folder / "src" / "scaling_helpers.py"
    code.parent.mkdir()
    code.write_text("def scale(frame, factor):\n    return frame * factor\n")
    offset = folder / "offset.txt"
    offset.write_text("0.5")

    class ArtifactScaler(PythonModel):  # local, so cloudpickle stores it by value
        def load_context(self, context):
            import scaling_helpers

            self.scale = scaling_helpers.scale
            self.offset = float(Path(context.artifacts["offset"]).read_text())

        def predict(self, context, model_input, params=None):
            return self.scale(model_input, (params or {}).get("factor", 1)) + self.offset

    example = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    params = {"factor": 2, "mode": "x"}
    save_pyfunc(folder / "custom", python_model=ArtifactScaler(), artifacts={"offset": str(offset)},
                code_paths=[str(code)], input_example=(example, params))
    from_code = folder / "doubler_model.py"
    from_code.write_text(textwrap.dedent("""\
        import mlflow
        from mlflow.pyfunc import PythonModel


        class Doubler(PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input * 2


        mlflow.models.set_model(Doubler())
    """))
    save_pyfunc(folder / "from-code", python_model=str(from_code), input_example=example)
    return [
        {"path": str(folder / "custom"), "kind": "pyfunc", "params": params, **frame_case(example)},
        {"path": str(folder / "from-code"), "kind": "code", "code_file": str(from_code), **frame_case(example)},
    ]


def our_predictions(case: dict) -> list | dict:
    data = pd.DataFrame(**case["frame"]) if "frame" in case else np.array(case["array"])
    policy = LoadingPolicy(skops_trusted_types=case.get("trusted", ()))  # the operator grants what MLmodel lists
    answer = load_model(case["path"], policy=policy).predict(data, case.get("params"))
    return answer.to_dict(orient="list") if isinstance(answer, pd.DataFrame) else np.asarray(answer).tolist()


def test_every_kind_of_saved_model_loads_in_mlflow_with_mlflows_signature(tmp_path):
    if not MLFLOW_PYTHON.exists():
        pytest.fail(f"{MLFLOW_PYTHON} is missing: create it with scripts/test.sh (python3 -m venv .bench/mlflow && "
                    ".bench/mlflow/bin/pip install mlflow==3.17.2 scikit-learn==1.9.1 skops==0.16.0 cloudpickle==3.1.2)")
    cases = sklearn_cases(tmp_path) + custom_cases(tmp_path)
    (tmp_path / "mlflow").mkdir()

    result = subprocess.run(
        [str(MLFLOW_PYTHON), str(Path(__file__).with_name("mlflow_resave.py")), json.dumps(cases),
         str(tmp_path / "mlflow")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.splitlines()[-1])
    for case in cases:
        answer = answers[case["path"]]
        assert answer["signature"] is not None, case["path"]
        assert answer["signature"] == answer["mlflow_signature"], case["path"]
        assert_same_predictions(answer["predictions"], our_predictions(case), case["path"])


def assert_same_predictions(theirs: list | dict, ours: list | dict, what: str) -> None:
    """Equal values (a DataFrame as its columns), to the float precision of a JSON round trip."""
    assert type(theirs) is type(ours), what
    if isinstance(ours, dict):
        assert list(theirs) == list(ours), what
        theirs, ours = list(theirs.values()), list(ours.values())
    np.testing.assert_allclose(np.asarray(theirs), np.asarray(ours), err_msg=what)
