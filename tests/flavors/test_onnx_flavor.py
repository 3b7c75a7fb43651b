"""ONNX models (flavors/onnx.py): MLflow-written fixtures (scripts/flavor_fixtures/onnx.py) serve as
MLflow serves them and as onnxruntime computes; capabilities are proven; our save loads in MLflow."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from flavors import LoadingPolicy, load_model
from flavors.errors import ModelLoadError
from flavors.onnx import CPU, CUDA, save_model, select_providers
from tests.conftest import FIXTURES, InProcessServer, RunningServer, assert_error, mlflow_python

try:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError as exc:  # fail, never skip: these tests are the flavor's proof
    raise ImportError(f"the ONNX tests need onnx and onnxruntime: pip install -e '.[onnx]' ({exc})") from exc

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
NAMES = ["onnx_regressor", "onnx_classifier", "onnx_multi_io"]


def expected(name: str) -> dict:
    return json.loads((FIXTURES / name / "expected.json").read_text())


def session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(FIXTURES / name / "model.onnx"), providers=[CPU])


def as_float32(value):
    """JSON numbers at float32 precision: MLflow writes a float32 with float64 digits (see xfail below)."""
    if isinstance(value, dict):
        return {k: as_float32(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_float32(v) for v in value]
    return np.float32(value) if isinstance(value, float) else value


def framework_answer(name: str, request: dict) -> dict:
    """onnxruntime's own output for the fixture's request, shaped as the server answers it."""
    sess = session(name)
    if name == "onnx_classifier":
        frame = pd.DataFrame(**request["dataframe_split"]).to_numpy(np.float32)
        labels, probabilities = sess.run(None, {"X": frame})
        return [{"output_label": int(label), "output_probability": {str(k): v for k, v in probability.items()}}
                for label, probability in zip(labels, probabilities)]
    inputs = request["inputs"]
    feeds = {k: np.array(v, np.float32) for k, v in inputs.items()} if isinstance(inputs, dict) else {
        "X": np.array(inputs, np.float32)}
    return {out.name: value.tolist() for out, value in zip(sess.get_outputs(), sess.run(None, feeds))}


@pytest.fixture(scope="module")
def apps() -> dict[str, InProcessServer]:
    return {name: InProcessServer(FIXTURES / name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_fixture_answers_as_mlflow_and_onnxruntime(apps, name):
    case = expected(name)
    response = apps[name].post(case["request"])
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"]
    assert as_float32(answer) == as_float32(case["served"]["predictions"]) == as_float32(case["pyfunc_predict"])
    assert as_float32(answer) == as_float32(framework_answer(name, case["request"]))


@pytest.mark.parametrize("name", ["onnx_regressor", "onnx_classifier", "onnx_multi_io"])
def test_answers_are_mlflows_digit_for_digit(apps, name):
    """float32 outputs are written as MLflow writes them: float(x), with a double's digits."""
    case = expected(name)
    assert apps[name].post(case["request"]).json() == case["served"]


def test_multi_io_fixture_reads_external_data_and_serves_over_http_with_two_workers():
    assert [p.suffix for p in (FIXTURES / "onnx_multi_io").iterdir() if p.suffix == ".data"] == [".data"]
    case = expected("onnx_multi_io")
    server = RunningServer(FIXTURES / "onnx_multi_io", workers=2)
    try:
        answers = [server.post(case["request"]) for _ in range(4)]  # both workers, each its own session
    finally:
        server.stop()
    for response in answers:
        assert response.status_code == 200, response.text
        assert as_float32(response.json()) == as_float32(case["served"])


def test_classifier_is_row_independent_and_takes_a_float_matrix():
    model = load_model(str(FIXTURES / "onnx_classifier"))
    assert model.row_independent and model.capabilities.array_input.column_names == tuple(IRIS_COLUMNS)
    rows = pd.DataFrame(**expected("onnx_classifier")["request"]["dataframe_split"])
    sess = session("onnx_classifier")
    batched = sess.run(None, {"X": rows.to_numpy(np.float32)})
    alone = [sess.run(None, {"X": rows.iloc[[i]].to_numpy(np.float32)}) for i in range(len(rows))]
    assert batched[0].tolist() == [out[0][0] for out in alone]  # labels: exactly
    for together, (_, [own]) in zip(batched[1], alone):  # probabilities: within a few float32 ulps
        assert together.keys() == own.keys() and np.allclose(list(together.values()), list(own.values()), rtol=1e-5)
    from_frame = model.predict(rows)
    assert model.predict(rows.to_numpy()).equals(from_frame)
    assert list(from_frame.columns) == ["output_label", "output_probability"]


@pytest.mark.parametrize("name", ["onnx_regressor", "onnx_multi_io"])
def test_tensor_models_answer_dicts_so_declare_no_batching_or_matrix(name):
    model = load_model(str(FIXTURES / name))
    assert not model.row_independent and model.array_input is None and model.model_format == "onnx"


def test_a_graph_mixing_rows_is_measured_not_row_independent(tmp_path):
    """A softmax over the batch axis: each answer depends on the other rows."""
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["share"], axis=0)], "batch_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("share", TensorProto.FLOAT, ["N", 2])])
    mixing = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    example = pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, 0.0]})
    save_model(mixing, tmp_path / "mixing", input_example=example)
    model = load_model(str(tmp_path / "mixing"))
    assert model.array_input is not None and not model.row_independent


def test_predict_method_chooses_the_label_or_the_probabilities(apps):
    case = expected("onnx_classifier")
    app = apps["onnx_classifier"]
    labels = app.post({**case["request"], "params": {"predict_method": "predict"}}).json()["predictions"]
    probabilities = app.post({**case["request"], "params": {"predict_method": "predict_proba"}}).json()
    served = case["served"]["predictions"]
    assert labels == [{"output_label": row["output_label"]} for row in served]
    assert probabilities["predictions"] == [{"output_probability": row["output_probability"]} for row in served]
    assert_error(app.post({**case["request"], "params": {"predict_method": "decision_function"}}),
                 400, "INVALID_PARAMETER_VALUE", "predict, predict_proba")
    assert_error(apps["onnx_regressor"].post({**expected("onnx_regressor")["request"],
                                              "params": {"predict_method": "predict_proba"}}),
                 400, "INVALID_PARAMETER_VALUE", "offers no other method")


def test_signature_is_enforced_with_mlflow_error_codes(apps):
    bad_column = {"dataframe_split": {"columns": IRIS_COLUMNS, "data": [["wide", 3.5, 1.4, 0.2]]}}
    assert_error(apps["onnx_classifier"].post(bad_column), 400, "BAD_REQUEST", "sepal_length")
    assert apps["onnx_regressor"].post({"inputs": [["wide", 3.5, 1.4, 0.2]]}).status_code == 400
    assert apps["onnx_multi_io"].post({"inputs": {"x": [[1.0, 2.0, 3.0]]}}).status_code == 400


def test_each_process_makes_its_own_single_threaded_session():
    predictor = load_model(str(FIXTURES / "onnx_regressor")).predictor
    first = predictor._process_session()
    assert first.get_session_options().intra_op_num_threads == 1 and predictor.active_providers == [CPU]
    predictor._pid = -1  # as in a worker forked after the load
    assert predictor._process_session() is not first


def test_cuda_device_is_refused_in_one_line_when_unavailable():
    with pytest.raises(ModelLoadError) as error:
        load_model(str(FIXTURES / "onnx_classifier"), policy=LoadingPolicy(device="cuda:1"))
    assert CUDA in str(error.value) and "\n" not in str(error.value)


def test_cuda_providers_keep_mlmodel_options_and_take_the_device_id():
    listed = [[CUDA, {"arena_extend_strategy": "kSameAsRequested"}], CPU]
    assert select_providers(listed, "cpu", [CUDA, CPU], "m") == [CPU]
    assert select_providers(listed, "cuda:1", [CUDA, CPU], "m") == [
        (CUDA, {"arena_extend_strategy": "kSameAsRequested", "device_id": 1}), CPU]


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ModelLoadError, match=r"pip install 'scoring-server\[onnx\]'"):
        load_model(str(FIXTURES / "onnx_classifier"))


def test_a_policy_refusing_onnx_refuses_the_model():
    with pytest.raises(ModelLoadError, match="stored as onnx"):
        load_model(str(FIXTURES / "onnx_classifier"), policy=LoadingPolicy(formats={"skops"}))


@pytest.mark.heavy  # real MLflow, in its own virtualenv
def test_our_save_serves_and_loads_in_mlflow_with_the_same_predictions(tmp_path):
    case = expected("onnx_classifier")
    rows = pd.DataFrame(**case["request"]["dataframe_split"])
    saved = tmp_path / "classifier"
    save_model(onnx.load(str(FIXTURES / "onnx_classifier" / "model.onnx")), saved, input_example=rows)
    assert load_model(str(saved)).row_independent
    ours = InProcessServer(saved).post(case["request"]).json()
    assert ours == case["served"]
    script = textwrap.dedent(f"""
        import json, mlflow.pyfunc, pandas as pd
        from mlflow.pyfunc.scoring_server import invocations
        model = mlflow.pyfunc.load_model({str(saved)!r})
        print(invocations({json.dumps(json.dumps(case["request"]))}, "application/json", model,
                          model.metadata.get_input_schema()).response)
    """)
    output = subprocess.run([mlflow_python(), "-c", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(output.strip().splitlines()[-1]) == ours


def test_our_save_writes_external_data_by_default(tmp_path):
    saved = tmp_path / "multi"
    save_model(onnx.load(str(FIXTURES / "onnx_multi_io" / "model.onnx")), saved, signature=False)
    assert len(list(saved.glob("*.data"))) == 1
    out = load_model(str(saved)).predict({"x": np.ones((2, 3), np.float32), "scale": np.ones((2, 1), np.float32)})
    assert sorted(out) == ["doubled", "hidden_sum"] and out["hidden_sum"].shape == (2, 1)


def test_a_process_forked_after_onnxruntime_is_imported_exits_and_nothing_is_left_in_tmp(tmp_path):
    """onnxruntime's telemetry (on unless ORT_DISABLE_TELEMETRY) writes $TMPDIR/.ses and hangs the exit
    of a child forked after the import, as every gunicorn worker of a server of many models is."""
    code = textwrap.dedent("""
        import os, sys
        from flavors import default_registry, read_mlmodel
        default_registry().shared_modules(read_mlmodel(sys.argv[1]))  # what a server of many models asks
        import onnxruntime
        pid = os.fork()
        if pid == 0:
            sys.exit(0)
        print(os.waitpid(pid, 0)[1])
    """)
    env = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    done = subprocess.run([sys.executable, "-c", code, str(FIXTURES / "onnx_regressor")], env={**env, "TMPDIR": str(tmp_path)}, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "0"
    assert list(tmp_path.iterdir()) == []
