"""Streaming ``scoring-server predict``: every input and output format answers what the server answers,
errors name their row, ``--on-error`` and rejects, ordered ``--workers``, one column per output, and (heavy)
memory that stays flat on a million rows.

Each run is a real process (a child of the test forkserver, see :class:`ForkedCli`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import FIXTURES, REPO, ForkedCli, InProcessServer

IRIS = FIXTURES / "iris"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
FORMATS = ["csv", "jsonl", "json", "parquet"]


def iris_rows(count: int) -> pd.DataFrame:
    """``count`` iris-like rows covering the three classes."""
    rng = np.random.default_rng(16)
    base = np.array([[5.1, 3.5, 1.4, 0.2], [5.9, 2.8, 4.3, 1.3], [6.7, 3.0, 5.7, 2.3]])
    return pd.DataFrame(np.round(base[np.arange(count) % 3] + rng.normal(0, 0.2, (count, 4)), 2), columns=COLUMNS)


def write_input(frame: pd.DataFrame, path: Path) -> Path:
    fmt = path.suffix[1:]
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        path.write_text(json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)}))
    else:
        frame.to_parquet(path, index=False)
    return path


def predict(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run ``scoring-server predict ARGS``; its exit code and what it printed (stdout and stderr)."""
    log = tmp_path / f"predict-{len(list(tmp_path.glob('predict-*')))}.log"
    log.touch()
    process = ForkedCli(["predict", *args], {"PATH": "/usr/bin:/bin"}, str(log))
    code = process.wait(timeout=120)
    return code, log.read_text()


def predictions_in(path: Path, fmt: str, column: str = "prediction") -> list:
    """The predictions an output file holds, as the server's JSON list would hold them."""
    if fmt == "json":
        return json.loads(path.read_text())["predictions"]
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    return frame[column].tolist()


@pytest.fixture(scope="module")
def iris_app() -> InProcessServer:
    return InProcessServer(IRIS)


def server_predictions(app: InProcessServer, frame: pd.DataFrame) -> list:
    response = app.post(frame.to_csv(index=False), "text/csv")
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("input_format", FORMATS)
def test_every_format_pair_answers_what_the_server_answers(tmp_path, iris_app, input_format, output_format):
    frame = iris_rows(25)
    source = write_input(frame, tmp_path / f"in.{input_format}")
    target = tmp_path / f"out.{output_format}"
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(source), "-o", str(target), "--batch-size", "7")
    assert code == 0, log
    assert predictions_in(target, output_format) == server_predictions(iris_app, frame)
    if output_format in ("csv", "parquet"):  # the input's columns come first, as read
        written = pd.read_csv(target) if output_format == "csv" else pd.read_parquet(target)
        assert list(written.columns) == COLUMNS + ["prediction"]
        pd.testing.assert_frame_equal(written[COLUMNS], frame, check_dtype=False)


def test_json_output_is_the_servers_answer_byte_for_byte(tmp_path, iris_app):
    frame = iris_rows(10)
    source = write_input(frame, tmp_path / "in.csv")
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(source), "-o", str(tmp_path / "out.json"),
                        "--batch-size", "3")
    assert code == 0, log
    assert (tmp_path / "out.json").read_bytes().strip() == iris_app.post(frame.to_csv(index=False), "text/csv").content


def test_stdout_and_the_format_flags(tmp_path):
    """``-t`` and ``--output-format`` win over extensions; without ``-o`` the output goes to stdout."""
    source = write_input(iris_rows(4), tmp_path / "in.csv").rename(tmp_path / "rows.txt")
    result = subprocess.run([sys.executable, "-m", "scoring_server", "predict", "-m", str(IRIS), "-i", str(source),
                             "-t", "csv", "--output-format", "jsonl"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr  # no progress bar off a terminal
    assert [json.loads(line) for line in result.stdout.splitlines()] == [0, 1, 2, 0]


def test_a_bad_cell_names_its_row_and_column(tmp_path):
    frame = iris_rows(20).astype(object)
    frame.loc[12, "sepal_width"] = "wide"  # data row 13
    source = write_input(frame, tmp_path / "in.csv")
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(source), "-o", str(tmp_path / "out.csv"),
                        "--batch-size", "8")
    assert code == 1
    assert "row 13:" in log and "sepal_width" in log and "Traceback" not in log


def test_a_line_that_is_not_json_names_its_row(tmp_path):
    source = tmp_path / "in.jsonl"
    write_input(iris_rows(5), source)
    source.write_text(source.read_text() + '{"sepal_length": 1,\n')
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(source))
    assert code == 1 and "row 6: not a JSON value" in log


def test_a_parse_failure_hints_at_the_format(tmp_path):
    source = write_input(iris_rows(3), tmp_path / "in.csv").rename(tmp_path / "in.json")
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(source))
    assert code == 1 and "looks like CSV: use -t csv" in log and "Traceback" not in log


@pytest.mark.parametrize("mode", ["skip", "null"])
def test_on_error_writes_failed_rows_to_the_rejects(tmp_path, iris_app, mode):
    frame = iris_rows(12).astype(object)
    for row in (2, 9):
        frame.loc[row, "petal_length"] = "long"
    source = write_input(frame, tmp_path / "in.csv")
    target = tmp_path / "out.csv"
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(source), "-o", str(target), "--on-error", mode,
                        "--batch-size", "5")
    assert code == 0, log
    good = frame.drop(index=[2, 9]).astype(float)
    expected = server_predictions(iris_app, good)
    written = pd.read_csv(target)
    if mode == "skip":
        assert written["prediction"].tolist() == expected
    else:
        assert len(written) == 12 and written["prediction"].isna().tolist() == [i in (2, 9) for i in range(12)]
        assert written["prediction"].dropna().astype(int).tolist() == expected
    rejects = pd.read_csv(tmp_path / "out.csv.rejects.csv")
    assert rejects["row"].tolist() == [3, 10] and rejects["petal_length"].tolist() == ["long", "long"]
    assert rejects["error"].str.contains("petal_length").all()
    assert "2 of 12 rows failed" in log


def test_workers_keep_the_input_order(tmp_path, iris_app):
    """In a new interpreter: the forkserver's children are daemons, which may not start workers."""
    frame = iris_rows(60)
    source = write_input(frame, tmp_path / "in.parquet")
    target = tmp_path / "out.jsonl"
    result = subprocess.run([sys.executable, "-m", "scoring_server", "predict", "-m", str(IRIS), "-i", str(source),
                             "-o", str(target), "--workers", "3", "--batch-size", "4"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert predictions_in(target, "jsonl") == server_predictions(iris_app, frame)


MULTI_OUTPUT_MODEL = textwrap.dedent('''
    import numpy as np
    import pandas as pd
    from flavors.python_model import PythonModel, set_model


    class Outputs(PythonModel):
        def predict(self, context, model_input, params=None):
            x = model_input["x"].to_numpy()
            if KIND == "frame":
                return pd.DataFrame({"low": 1 - x / 10, "high": x / 10})
            if KIND == "dict":
                return {"double": x * 2, "label": np.where(x > 5, "big", "small")}
            return np.column_stack([x, x * x])


    KIND = "{kind}"
    set_model(Outputs())
''')


@pytest.mark.parametrize("kind, columns", [("frame", ["low", "high"]), ("dict", ["double", "label"]),
                                           ("matrix", ["prediction_0", "prediction_1"])])
def test_multi_output_models_get_one_column_per_output(tmp_path, kind, columns):
    from flavors.python_function import save_model

    code_file = tmp_path / "outputs.py"
    code_file.write_text(MULTI_OUTPUT_MODEL.replace("{kind}", kind))
    save_model(tmp_path / "model", python_model=str(code_file), input_example=pd.DataFrame({"x": [1.0]}))
    frame = pd.DataFrame({"x": [float(i) for i in range(9)]})
    source = write_input(frame, tmp_path / "in.csv")
    code, log = predict(tmp_path, "-m", str(tmp_path / "model"), "-i", str(source), "-o", str(tmp_path / "out.parquet"),
                        "--batch-size", "4")
    assert code == 0, log
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert list(written.columns) == ["x", *columns] and len(written) == 9
    answer = InProcessServer(tmp_path / "model").post(frame.to_csv(index=False), "text/csv").json()["predictions"]
    code, log = predict(tmp_path, "-m", str(tmp_path / "model"), "-i", str(source), "-o", str(tmp_path / "out.jsonl"),
                        "--batch-size", "4")
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    rows = [dict(zip(answer, values)) for values in zip(*answer.values())] if isinstance(answer, dict) else answer
    assert code == 0 and lines == rows


PEAK_RSS = textwrap.dedent('''
    import sys
    from scoring_server.cli import main

    try:
        main(sys.argv[1:], standalone_mode=False)
    finally:
        status = open("/proc/self/status").read()
        print(next(line for line in status.splitlines() if line.startswith("VmHWM")), file=sys.stderr)
''')


def peak_rss_mib(*args: str) -> float:
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


@pytest.mark.heavy
def test_memory_stays_flat_on_a_million_rows(tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    rows = iris_rows(100_000)
    rows.to_csv(small, index=False)
    with open(large, "w") as handle:
        for part in range(10):
            rows.to_csv(handle, index=False, header=part == 0)
    args = ["predict", "-m", str(IRIS), "-o", str(tmp_path / "out.json")]
    small_peak = peak_rss_mib(*args, "-i", str(small))
    large_peak = peak_rss_mib(*args, "-i", str(large))
    print(f"peak RSS: {small_peak:.0f} MiB for 100k rows, {large_peak:.0f} MiB for 1M rows")
    assert large_peak < small_peak + 50, (small_peak, large_peak)
    assert large_peak < 500
    assert len(json.loads((tmp_path / "out.json").read_text())["predictions"]) == 1_000_000


@pytest.mark.parametrize("quiet", [False, True])
def test_a_progress_bar_on_a_terminal_unless_quiet(tmp_path, quiet):
    """stderr a pseudo-terminal (of 100 columns): rows done, rows/s and the total (from Parquet's footer)."""
    import fcntl
    import struct
    import termios

    source = write_input(iris_rows(3000), tmp_path / "in.parquet")
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    command = [sys.executable, "-m", "scoring_server", "predict", "-m", str(IRIS), "-i", str(source),
               "-o", str(tmp_path / "out.json"), "--batch-size", "1000", *(["--quiet"] if quiet else [])]
    process = subprocess.Popen(command, cwd=REPO, stderr=secondary)
    os.close(secondary)
    shown = b""
    while chunk := _read(primary):
        shown += chunk
    assert process.wait(timeout=120) == 0
    text = shown.decode()
    if quiet:
        assert text.strip() == ""
    else:
        assert "3.00k/3.00k" in text and "rows/s" in text and "100%" in text


def _read(descriptor: int) -> bytes:
    try:
        return os.read(descriptor, 4096)
    except OSError:  # the other end closed
        return b""


def test_quoted_newlines_and_blank_lines_keep_row_numbers(tmp_path, iris_app):
    """A quoted field holding a newline is one row, a blank line none, for chunks and row numbers alike."""
    header = ",".join(COLUMNS) + ",note\n"
    rows = ['5.1,3.5,1.4,0.2,"two\nlines"\n', "\n", "6.7,3.0,5.2,2.3,plain\n", '5.9,2.8,4.3,1.3,"a ""quote"""\n',
            "6.1,wide,1.4,0.2,x\n"]
    source = tmp_path / "in.csv"
    source.write_text(header + "".join(rows))
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(source), "-o", str(tmp_path / "out.csv"),
                        "--batch-size", "2", "--on-error", "skip")
    assert code == 0, log
    written = pd.read_csv(tmp_path / "out.csv")
    assert written["note"].tolist() == ["two\nlines", "plain", 'a "quote"']
    assert written["prediction"].tolist() == server_predictions(iris_app, written[COLUMNS])
    assert pd.read_csv(tmp_path / "out.csv.rejects.csv")["row"].tolist() == [4]
