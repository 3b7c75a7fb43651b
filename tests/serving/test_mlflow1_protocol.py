"""MLflow 1.x clients: every row of ../shared/mlflow1-protocol-observed.md in `mlflow1` mode, a mixed
set in `auto` mode, against 1.x-style model directories; and 2.x unchanged by default."""
from __future__ import annotations

import pytest

from ..conftest import InProcessServer
from .mlflow1_models import COLUMNS, write_pyfunc_model, write_sklearn_model

ROW = [5.1, 3.5, 1.4, 0.2]
ROW2 = [6.7, 3.0, 5.2, 2.3]
RECORD = dict(zip(COLUMNS, ROW))
SPLIT = {"columns": COLUMNS, "data": [ROW]}
CSV = ",".join(COLUMNS) + "\n5.1,3.5,1.4,0.2\n"


@pytest.fixture(scope="module")
def legacy_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow1")
    return {"sklearn": write_sklearn_model(root / "sklearn"), "data_key": write_sklearn_model(root / "old", data_key=True),
            "pyfunc": write_pyfunc_model(root / "pyfunc")}


def serve(model_dir, protocol=None):
    """The app for ``model_dir`` speaking ``protocol`` (None: the default)."""
    return InProcessServer(model_dir, protocol=protocol)


@pytest.fixture(scope="module")
def mlflow1_app(legacy_dirs):
    return serve(legacy_dirs["sklearn"], "mlflow1")


@pytest.fixture(scope="module")
def auto_app(legacy_dirs):
    return serve(legacy_dirs["sklearn"], "auto")


OBSERVED_SUCCESSES = [
    ("bare_split", SPLIT, "application/json", [0]),
    ("format_pandas_split", SPLIT, "application/json; format=pandas-split", [0]),
    ("split_with_index", dict(SPLIT, index=[0]), "application/json", [0]),
    ("format_pandas_records", [RECORD], "application/json; format=pandas-records", [0]),
    ("records_without_format", [RECORD], "application/json", [0]),
    ("instances", {"instances": [RECORD]}, "application/json", [0]),
    ("inputs", {"inputs": {k: [v] for k, v in RECORD.items()}}, "application/json", [0]),
    ("csv", CSV, "text/csv", [0]),
    ("two_rows", {"columns": COLUMNS, "data": [ROW, ROW2]}, "application/json", [0, 2]),
    ("numpy_split", {"columns": COLUMNS, "index": [0], "data": [ROW]}, "application/json-numpy-split", [0]),
]


@pytest.mark.parametrize("body, content_type, expected", [c[1:] for c in OBSERVED_SUCCESSES],
                         ids=[c[0] for c in OBSERVED_SUCCESSES])
def test_observed_successes_answer_a_bare_list(mlflow1_app, body, content_type, expected):
    response = mlflow1_app.post(body, content_type)
    assert response.status_code == 200, response.text
    assert response.json() == expected


@pytest.mark.parametrize(
    "body, fragment",
    [({"dataframe_split": SPLIT}, "Failed to parse input as a Pandas DataFrame"),
     ({"columns": ["x"], "data": [[1.0]]}, "Model is missing inputs ['sepal_length'"),
     ({"columns": COLUMNS, "data": [["a", 3.5, 1.4, 0.2]]}, "column sepal_length")],
    ids=["2x_wrapper", "missing_columns", "string_in_double"],
)
def test_observed_errors_are_all_bad_request(mlflow1_app, body, fragment):
    response = mlflow1_app.post(body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert fragment in response.json()["message"]


def test_unsupported_type_lists_types_and_formats(mlflow1_app):
    response = mlflow1_app.post("x", "text/plain")
    assert response.status_code == 415
    assert response.json()["message"] == (
        "This predictor only supports the following content types and formats: Types: ['text/csv', "
        "'application/json', 'application/json-numpy-split']; Formats: ['pandas-records', 'pandas-split']. "
        "Got 'text/plain'.")


def test_unknown_format_is_415(mlflow1_app):
    assert mlflow1_app.post(SPLIT, "application/json; format=pandas-columns").status_code == 415


@pytest.mark.parametrize("missing", ["index", "columns", "data"])
def test_numpy_split_requires_index_columns_and_data(mlflow1_app, missing):
    body = {key: value for key, value in {"columns": COLUMNS, "index": [0], "data": [ROW]}.items() if key != missing}
    response = mlflow1_app.post(body, "application/json-numpy-split")
    assert response.status_code == 400 and "Failed to parse input as a Numpy" in response.json()["message"]


# Observed against MLflow 1.30.1 (scripts/compare_with_mlflow1.py): `format=` only on application/json,
# media types exact (no application/csv alias), other parameters ignored, an empty format is none.
@pytest.mark.parametrize("content_type, body, status", [
    ("text/csv; format=pandas-split", CSV, 415),
    ("text/csv; format=pandas-records", CSV, 415),
    ("application/json-numpy-split; format=pandas-split", {"columns": COLUMNS, "index": [0], "data": [ROW]}, 415),
    ("application/csv", CSV, 415),
    ("application/json; format=", SPLIT, 200),
    ("application/json; foo=bar", SPLIT, 200),
    ("application/json;", SPLIT, 200),
    ("text/csv; foo=bar", CSV, 200),
    ("application/json; Format=pandas-records", SPLIT, 200),  # not `format`: ignored, so split
    ("application/json; charset=latin-1", SPLIT, 415),
])
def test_content_type_parameters_follow_mlflow_1_30(mlflow1_app, content_type, body, status):
    assert mlflow1_app.post(body, content_type).status_code == status


def test_ping_head_and_version(mlflow1_app):
    assert mlflow1_app.get("/ping").text == "\n"
    assert mlflow1_app.head("/ping").status_code == 200
    assert mlflow1_app.get("/version").status_code == 200


def test_non_utf8_body_is_a_clean_400(mlflow1_app):
    response = mlflow1_app.post(b'{"columns": ["\xff"], "data": [[1]]}')
    assert response.status_code == 400 and response.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize("kind", ["data_key", "pyfunc"])
def test_older_model_layouts_load_and_answer(legacy_dirs, kind):
    response = serve(legacy_dirs[kind], "mlflow1").post({"columns": COLUMNS, "data": [ROW, ROW2]})
    assert response.status_code == 200, response.text
    if kind == "pyfunc":
        assert response.json()[0] < 0.01 and response.json()[1] > 0.5  # P(virginica) of each row
    else:
        assert response.json() == [0, 2]


MIXED = [
    ("1x_bare_split", SPLIT, "application/json", [0]),
    ("1x_format_param", [RECORD], "application/json; format=pandas-records", [0]),
    ("1x_records_list", [RECORD], "application/json", [0]),
    ("2x_split", {"dataframe_split": SPLIT}, "application/json", {"predictions": [0]}),
    ("2x_records", {"dataframe_records": [RECORD]}, "application/json", {"predictions": [0]}),
    ("2x_inputs", {"inputs": {k: [v] for k, v in RECORD.items()}}, "application/json", {"predictions": [0]}),
    ("2x_instances", {"instances": [RECORD]}, "application/json", {"predictions": [0]}),
    ("csv_is_2x", CSV, "text/csv", {"predictions": [0]}),
]


@pytest.mark.parametrize("body, content_type, expected", [c[1:] for c in MIXED], ids=[c[0] for c in MIXED])
def test_auto_answers_each_generation_its_own_way(auto_app, body, content_type, expected):
    response = auto_app.post(body, content_type)
    assert response.status_code == 200, response.text
    assert response.json() == expected


def test_auto_error_codes_follow_the_generation(auto_app):
    legacy = auto_app.post({"columns": ["x"], "data": [[1.0]]})
    modern = auto_app.post({"dataframe_split": {"columns": ["x"], "data": [[1.0]]}})
    assert legacy.json()["error_code"] == "BAD_REQUEST"
    assert modern.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_default_protocol_is_2x_and_refuses_1x_requests(legacy_dirs):
    server = serve(legacy_dirs["sklearn"])
    bare = server.post(SPLIT)
    with_format = server.post(SPLIT, "application/json; format=pandas-split")
    wrapped = server.post({"dataframe_split": SPLIT})
    assert bare.status_code == 400 and "exactly one of the input fields" in bare.json()["message"]
    assert with_format.status_code == 415
    assert wrapped.json() == {"predictions": [0]}
