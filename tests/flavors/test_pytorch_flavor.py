"""The PyTorch flavor: MLflow 3.17's layouts (torch.export ``model.pt2``, pickled ``model.pth`` + ``code/``)
load without MLflow and answer as MLflow's pyfunc (expected.json, written by
scripts/flavor_fixtures/pytorch.py) and as torch itself; our save_model's models load in real MLflow."""
from __future__ import annotations

import builtins
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flavors import LoadingPolicy, ModelLoadError, load_model
from flavors.policy import FormatNotAllowedError
from scoring_server.pipeline import Scorer
from tests.conftest import InProcessServer, RunningServer, assert_error, mlflow_python

try:
    import torch
except ImportError:  # never skip: the flavor's tests need the framework
    pytest.fail("torch is not installed: pip install 'scoring-server[pytorch]' (CPU build: see scripts/test.sh)",
                pytrace=False)

from flavors.pytorch import save_model

pytestmark = pytest.mark.heavy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow-models"
REPO = Path(__file__).resolve().parents[2]
MLP_CODE = FIXTURES / "pytorch_pickled" / "code" / "tiny_mlp.py"
ROWS = np.random.default_rng(3).normal(size=(7, 4)).astype(np.float32)


def expected(name: str) -> dict:
    return json.loads((FIXTURES / name / "expected.json").read_text())


def request_of(case: dict) -> dict:
    return {key: case[key] for key in ("inputs", "dataframe_split") if key in case}


def as_matrix(predictions: list) -> np.ndarray:
    """Records (``{"0": .., "1": ..}``) or lists of a 3-output model as a matrix."""
    return np.asarray([[row[k] for k in sorted(row, key=int)] if isinstance(row, dict) else row
                       for row in predictions])


def torch_own(name: str, rows: np.ndarray) -> np.ndarray:
    """The fixture's module run by torch itself, without our flavor."""
    data = FIXTURES / name / "data"
    if (data / "model.pt2").exists():
        module = torch.export.load(str(data / "model.pt2")).module()
        calls = [rows] if name == "pytorch_pt2" else [rows[i:i + 1] for i in range(len(rows))]
    else:
        sys.path.insert(0, str(FIXTURES / name / "code"))
        try:
            module = torch.load(str(data / "model.pth"), weights_only=False).eval()
        finally:
            sys.path.pop(0)
        calls = [rows]
    with torch.inference_mode():
        return np.concatenate([module(torch.from_numpy(np.array(part))).numpy() for part in calls])


class BatchCentering(torch.nn.Module):
    """Mixes the rows of a batch: each answer depends on the others."""

    def forward(self, x):
        return x - x.mean(dim=0, keepdim=True)


@pytest.fixture(scope="module")
def mlp() -> torch.nn.Module:
    """The fixtures' MLP class (from code/tiny_mlp.py, importable as ``tiny_mlp`` so that a pickle
    refers to it by name), with other weights."""
    spec = importlib.util.spec_from_file_location("tiny_mlp", MLP_CODE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["tiny_mlp"] = module
    torch.manual_seed(0)
    yield module.TinyMLP().eval()
    del sys.modules["tiny_mlp"]


# --- MLflow-written fixtures -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, model_format", [("pytorch_pt2", "torch-export"),
                                                ("pytorch_pt2_one_row", "torch-export"),
                                                ("pytorch_pickled", "cloudpickle")])
def test_mlflow_fixtures_predict_as_mlflow_and_torch(name, model_format):
    case = expected(name)
    model = load_model(str(FIXTURES / name))
    assert model.flavor == "pytorch" and model.model_format == model_format
    if "inputs" in case:
        rows = np.asarray(case["inputs"], dtype=np.float32)
        answer = model.predict(rows, None)
        assert isinstance(answer, np.ndarray)
    else:
        frame = pd.DataFrame(**case["dataframe_split"])
        answer = model.predict(frame, None)
        assert list(answer.columns) == [0, 1, 2]
        rows = frame.to_numpy(dtype=np.float32)
    np.testing.assert_allclose(as_matrix(np.asarray(answer).tolist()), as_matrix(case["predictions"]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(answer), torch_own(name, rows), rtol=1e-5)


def test_one_row_export_is_called_row_by_row_where_mlflow_fails():
    assert expected("pytorch_pt2_one_row")["mlflow_error_for_more_rows"].startswith("AssertionError: Guard failed")
    model = load_model(str(FIXTURES / "pytorch_pt2_one_row"))
    answer = InProcessServer(FIXTURES / "pytorch_pt2_one_row").post({"inputs": ROWS.tolist()})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], torch_own("pytorch_pt2_one_row", ROWS), rtol=1e-5)
    assert not model.row_independent  # batching would only queue the same per-row calls


@pytest.mark.parametrize("name", ["pytorch_pt2", "pytorch_pickled"])
def test_declared_row_independence_holds(name):
    model = load_model(str(FIXTURES / name))
    assert model.row_independent
    data = pd.DataFrame(ROWS.astype(np.float64), columns=list("abcd")) if name == "pytorch_pickled" else ROWS
    batched = np.asarray(model.predict(data, None))
    alone = np.concatenate([np.asarray(model.predict(data[i:i + 1], None)) for i in range(len(ROWS))])
    np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-6)


def test_a_module_mixing_rows_is_measured_not_row_independent(tmp_path):
    save_model(BatchCentering(), tmp_path / "m", serialization_format="pickle", input_example=ROWS[:3].copy())
    assert not load_model(str(tmp_path / "m")).row_independent


def test_array_input_only_for_double_columns_and_the_matrix_answers_as_the_frame():
    assert load_model(str(FIXTURES / "pytorch_pt2")).array_input is None  # tensor signature
    model = load_model(str(FIXTURES / "pytorch_pickled"))
    assert model.array_input.column_names == ("a", "b", "c", "d")
    frame = pd.DataFrame(ROWS.astype(np.float64), columns=list("abcd"))
    assert model.predict(frame.to_numpy(), None).equals(model.predict(frame, None))
    app = InProcessServer(FIXTURES / "pytorch_pickled")
    body = {"dataframe_split": {"columns": list("abcd"), "data": frame.to_numpy().tolist()}}
    assert Scorer(model).fast_path is not None and Scorer(model).fast_path.matrix(body) is not None
    answer = app.post(body).json()["predictions"]
    assert answer == model.predict(frame, None).rename(columns=str).to_dict(orient="records")


@pytest.mark.parametrize("name, body, error_code, fragment", [
    ("pytorch_pickled", {"dataframe_split": {"columns": list("abcd"), "data": [["x", 1.0, 2.0, 3.0]]}},
     "BAD_REQUEST", "Failed to convert column a to type 'float64'"),
    ("pytorch_pt2", {"inputs": [["x", 1.0, 2.0, 3.0]]}, "BAD_REQUEST", "to type 'float32'"),
    ("pytorch_pt2", {"inputs": [[1.0, 2.0, 3.0]]}, "INVALID_PARAMETER_VALUE", "does not match expected shape (-1, 4)"),
])
def test_the_signature_is_enforced(name, body, error_code, fragment):
    assert_error(InProcessServer(FIXTURES / name).post(body), 400, error_code, fragment)


# --- over HTTP -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def our_pt2(tmp_path_factory, mlp) -> Path:
    path = tmp_path_factory.mktemp("ours") / "pt2"
    save_model(mlp, path, input_example=ROWS[:4].copy())
    return path


@pytest.mark.parametrize("name", ["pytorch_pt2", "pytorch_pickled", "ours"])
def test_served_over_http_by_two_workers(name, our_pt2, mlp):
    if name == "ours":
        case = {"inputs": ROWS.tolist()}
        with torch.inference_mode():
            want = mlp(torch.from_numpy(ROWS)).numpy()
    else:
        case = expected(name)
        want = as_matrix(case["predictions"])
    server = RunningServer(our_pt2 if name == "ours" else FIXTURES / name, workers=2)
    try:
        answers = [server.post(request_of(case)) for _ in range(4)]
    finally:
        server.stop()
    for answer in answers:
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(as_matrix(answer.json()["predictions"]), want, rtol=1e-5)


# --- loading policy, device, missing torch ---------------------------------------------------------------------

def test_the_policy_sees_the_file_present():
    only_export = LoadingPolicy(formats={"torch-export"})
    assert load_model(str(FIXTURES / "pytorch_pt2"), policy=only_export).model_format == "torch-export"
    with pytest.raises(FormatNotAllowedError, match="cloudpickle"):
        load_model(str(FIXTURES / "pytorch_pickled"), policy=only_export)


def test_a_state_dict_alone_is_refused_as_not_a_model(copy_fixture, mlp):
    path = copy_fixture("pytorch_pickled")
    for name in ("model.pth", "pickle_module_info.txt"):
        (path / "data" / name).unlink()
    torch.save(mlp.state_dict(), path / "data" / "state_dict.pth")
    with pytest.raises(ModelLoadError, match="only a state dict"):
        load_model(str(path))


def test_cpu_by_default_with_one_thread_and_cuda_refused_when_unavailable(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    model = load_model(str(FIXTURES / "pytorch_pickled"), policy=LoadingPolicy(device="cpu"))
    assert {p.device.type for p in model.predictor.module.parameters()} == {"cpu"}
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("pytorch_pickled", "pytorch_pt2"):
        with pytest.raises(ModelLoadError, match="cuda:1 asked for, but CUDA is not available") as error:
            load_model(str(FIXTURES / name), policy=LoadingPolicy(device="cuda:1"))
        assert "\n" not in str(error.value)


def test_a_missing_torch_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    monkeypatch.delitem(sys.modules, "torch")
    with pytest.raises(ModelLoadError, match=r"scoring-server\[pytorch\]"):
        load_model(str(FIXTURES / "pytorch_pt2"))


def test_importing_the_flavor_does_not_import_torch():
    code = "import sys, flavors.pytorch; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- our save_model ----------------------------------------------------------------------------------------------

def test_save_model_writes_mlflows_layouts(tmp_path, mlp, our_pt2):
    assert sorted(p.name for p in (our_pt2 / "data").iterdir()) == ["model.pt2"]
    assert load_model(str(our_pt2)).metadata.signature == load_model(str(FIXTURES / "pytorch_pt2")).metadata.signature
    frame = pd.DataFrame(ROWS[:3].astype(np.float64), columns=list("abcd"))
    save_model(mlp, tmp_path / "pickled", serialization_format="pickle", input_example=frame, code_paths=[MLP_CODE])
    assert (tmp_path / "pickled" / "data" / "pickle_module_info.txt").read_text() == "mlflow.pytorch.pickle_module"
    for path, data in ((our_pt2, ROWS), (tmp_path / "pickled", pd.DataFrame(ROWS.astype(float), columns=list("abcd")))):
        model = load_model(str(path))
        assert model.row_independent
        with torch.inference_mode():
            want = mlp(torch.from_numpy(ROWS)).numpy()
        np.testing.assert_allclose(np.asarray(model.predict(data, None)), want, rtol=1e-5)


def test_pt2_save_needs_an_array_example(tmp_path, mlp):
    with pytest.raises(ValueError, match="numpy array"):
        save_model(mlp, tmp_path / "m", input_example=pd.DataFrame(ROWS, columns=list("abcd")))
    assert not (tmp_path / "m").exists()


def test_our_one_row_export_fixes_the_batch_and_is_still_served(tmp_path, mlp):
    save_model(mlp, tmp_path / "m", input_example=ROWS[:1].copy())
    model = load_model(str(tmp_path / "m"))
    assert model.predictor.one_row and not model.row_independent
    with torch.inference_mode():
        np.testing.assert_allclose(model.predict(ROWS, None), mlp(torch.from_numpy(ROWS)).numpy(), rtol=1e-5)


def test_our_saved_models_load_in_real_mlflow(tmp_path, mlp, our_pt2):
    save_model(mlp, tmp_path / "pickled", serialization_format="pickle", code_paths=[MLP_CODE],
               input_example=pd.DataFrame(ROWS[:3].astype(np.float64), columns=list("abcd")))
    script = textwrap.dedent(f"""\
        import json, sys, numpy as np, pandas as pd, mlflow.pyfunc
        rows = np.asarray({ROWS.tolist()!r}, dtype=np.float32)
        pt2 = mlflow.pyfunc.load_model({str(our_pt2)!r}).predict(rows)  # pickle not allowed: a pickle-free export
        import os; os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
        frame = pd.DataFrame(rows.astype(np.float64), columns=list("abcd"))
        pickled = mlflow.pyfunc.load_model({str(tmp_path / "pickled")!r}).predict(frame)
        print(json.dumps([pt2.tolist(), pickled.to_numpy().tolist()]))
    """)
    result = subprocess.run([mlflow_python(), "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    pt2, pickled = json.loads(result.stdout.splitlines()[-1])
    with torch.inference_mode():
        want = mlp(torch.from_numpy(ROWS)).numpy()
    np.testing.assert_allclose(pt2, want, rtol=1e-5)
    np.testing.assert_allclose(pickled, want, rtol=1e-5)
