"""scoring_server.spark in pyspark's local mode (local[2]): the UDF's answers equal the server's for the
same rows, a refused row is named, struct outputs, models:/ URIs shipped to executors, and
``predict --engine spark``. Needs pyspark (the ``spark`` extra) and Java 17+: heavy."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from tests.conftest import FIXTURES

pytestmark = [pytest.mark.heavy,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None:
        pytest.fail("Java not found: apt-get install openjdk-17-jre-headless (scripts/test.sh does)")
    try:
        from scoring_server.spark.job import spark_session
    except ImportError:
        pytest.fail("pyspark not found: pip install -e '.[test]' (or '.[spark]')")
    session = spark_session("local[2]")
    yield session
    session.stop()


def server_predictions(model_uri: str, frame: pd.DataFrame, params: dict | None = None) -> list:
    """What ``/invocations`` answers for these rows (the server's own pipeline)."""
    from flavors import load_model
    from scoring_server.pipeline import Scorer

    split = {"columns": list(frame.columns), "data": frame.to_numpy(dtype=object).tolist()}  # exact floats
    body = {"dataframe_split": split, "params": params}
    return json.loads(Scorer(load_model(model_uri)).score(json.dumps(body).encode(), "application/json"))["predictions"]


def iris_rows(count: int = 300) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(7).random((count, 4)) * 7, columns=IRIS_COLUMNS)


@pytest.mark.parametrize("model", ["iris", "iris_nosig"])
def test_iris_predictions_equal_the_server(spark, model):
    from scoring_server.spark import spark_udf

    rows = iris_rows()
    udf = spark_udf(spark, str(FIXTURES / model))
    scored = spark.createDataFrame(rows).repartition(3).withColumn("p", udf(*IRIS_COLUMNS)).toPandas()
    expected = server_predictions(str(FIXTURES / model), scored[IRIS_COLUMNS])
    assert scored["p"].tolist() == expected
    assert str(scored["p"].dtype) == ("int64" if model == "iris" else "float64")  # signature; MLflow's double


def test_params_reach_the_model_as_in_the_server(spark):
    from scoring_server.spark import spark_udf

    uri = str(FIXTURES / "day_models")
    rows = pd.DataFrame(np.random.default_rng(3).random((50, 3)), columns=list("abc"))
    frame = spark.createDataFrame(rows)
    for day in ("Monday", "Wednesday"):
        scored = frame.withColumn("p", spark_udf(spark, uri, params={"day_of_week": day})()).toPandas()
        assert scored["p"].tolist() == server_predictions(uri, scored[list("abc")], {"day_of_week": day})


def test_a_refused_row_is_named_with_its_column(spark):
    from pyspark.errors import PythonException

    from scoring_server.spark import spark_udf

    rows = iris_rows(20).astype(object)
    rows.loc[13, "petal_length"] = "oops"
    frame = spark.createDataFrame(rows.astype(str)).coalesce(1)
    with pytest.raises(PythonException) as failure:
        frame.withColumn("p", spark_udf(spark, str(FIXTURES / "iris"))()).collect()
    message = str(failure.value)
    assert "partition 0, row 14 (" in message and "petal_length='oops'" in message
    assert "Failed to convert column petal_length" in message


def test_struct_outputs_from_the_signature(spark, tmp_path):
    from flavors.python_function import save_model
    from scoring_server.spark import spark_udf

    code = tmp_path / "two_outputs.py"
    code.write_text(textwrap.dedent("""
        import pandas as pd
        from flavors.python_model import set_model

        def predict(data, params=None):
            return pd.DataFrame({"total": data["a"] + data["b"], "label": ["big" if v > 1 else "small"
                                                                          for v in data["a"] + data["b"]]})

        set_model(predict)
    """))
    example = pd.DataFrame({"a": [0.5, 1.5], "b": [0.25, 0.75]})
    save_model(tmp_path / "model", python_model=code, input_example=example)
    udf = spark_udf(spark, str(tmp_path / "model"))
    rows = pd.DataFrame(np.random.default_rng(5).random((40, 2)), columns=["a", "b"])
    scored = spark.createDataFrame(rows).withColumn("p", udf())
    assert scored.schema["p"].dataType.simpleString() == "struct<total:double,label:string>"
    got = scored.select("a", "b", "p.total", "p.label").toPandas()
    assert got[["total", "label"]].to_dict(orient="records") == server_predictions(str(tmp_path / "model"),
                                                                                  got[["a", "b"]])


def test_a_registry_version_is_shipped_to_executors(spark, tmp_path):
    from scoring_server.registry import ModelRegistry
    from scoring_server.spark import spark_udf

    root = tmp_path / "registry"
    ModelRegistry(root).register("iris", str(FIXTURES / "iris"))
    udf = spark_udf(spark, "models:/iris/1", registry_root=str(root))
    shutil.rmtree(root)  # resolved and shipped on the driver: executors never look for it
    scored = spark.createDataFrame(iris_rows(60)).withColumn("p", udf()).toPandas()
    assert scored["p"].tolist() == server_predictions(str(FIXTURES / "iris"), scored[IRIS_COLUMNS])


def test_predict_engine_spark_writes_a_dataset_and_names_a_bad_row(tmp_path):
    rows = iris_rows(100)
    rows.to_csv(tmp_path / "in.csv", index=False)
    command = [sys.executable, "-m", "scoring_server", "predict", "--engine", "spark", "--spark-master", "local[2]",
               "-m", str(FIXTURES / "iris")]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([*command, "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    written = pd.read_parquet(tmp_path / "out")
    assert list(written.columns) == [*IRIS_COLUMNS, "prediction"]
    assert written["prediction"].tolist() == server_predictions(str(FIXTURES / "iris"), written[IRIS_COLUMNS])

    bad = rows.astype(object)
    bad.loc[42, "sepal_width"] = "n/a"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    failed = subprocess.run([*command, "-i", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "out.csv")],
                            capture_output=True, text=True, timeout=180, env=env)
    assert failed.returncode == 1
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: partition 0, row 43 (") and "sepal_width='n/a'" in error, failed.stderr
    assert "Traceback" not in failed.stderr
