"""The text fast paths of streaming ``predict``: lines cut from large reads, and CSV input rows written
back as they are beside their predictions, must give what the plain line-by-line and pandas paths give."""
from __future__ import annotations

import io
import random

import numpy as np
import pandas as pd
import pytest

from scoring_server.batch.readers import CsvChunk, LineReader
from scoring_server.batch.writers import CsvWriter, output_table

from .test_batch_predict import COLUMNS, IRIS, iris_rows, predict


@pytest.mark.parametrize("seed", range(4))
def test_line_reader_takes_exactly_the_lines_asked_for(seed):
    """Whatever the read size, line lengths, blank lines and a last line without a newline."""
    rng = random.Random(seed)
    for _ in range(200):
        lines = [b"x" * rng.randint(0, 40) + b"\n" for _ in range(rng.randint(0, 200))]
        data = b"".join(lines)
        if rng.random() < 0.5:
            data = data.rstrip(b"\n")
        reader = LineReader(io.BytesIO(data))
        reader.READ_SIZE = rng.randint(1, 150)
        taken, left = [], data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        while block := reader.take(count := rng.randint(1, 30)):
            assert block.count(b"\n") == min(count, left) and block.endswith(b"\n")
            left -= min(count, left)
            taken.append(block)
        assert b"".join(taken) == (data + b"\n" if data and not data.endswith(b"\n") else data)


def _written(inputs, predictions, rows: int, good=None) -> bytes:
    stream = io.BytesIO()
    writer = CsvWriter(stream)
    writer.write(inputs, predictions, rows, good)
    writer.write(inputs, predictions, rows, good)  # a second chunk: no header again
    return stream.getvalue()


@pytest.mark.parametrize("predictions", [
    np.array([0, 2, 1, 0, 1]),
    np.array([True, False, True, True, False]),
    np.array([0.1, 1e20, 1 / 3, np.nan, -5.0]),
    np.array([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5], [0.1, 0.9], [0.3, 0.7]]),
    pd.DataFrame({"label": ["a,b", 'say "hi"', "two\nlines", "", "plain"], "score": [1, 2, 3, 4, 5]}),
    {"total": np.arange(5.0), "name": np.array(["a", "b", "c", "d", "e"])},
], ids=["labels", "booleans", "floats", "probabilities", "quoted-text", "dict"])
def test_input_rows_written_as_they_are_equal_the_parsed_rows_written_by_pandas(predictions):
    frame = iris_rows(5)
    text = frame.to_csv(index=False).encode()
    header, body = text.split(b"\n", 1)
    chunk = CsvChunk(1, 5, header + b"\n", body, None)
    assert chunk.csv_text() is not None
    expected = _written(chunk.frame(), predictions, 5)
    assert _written(chunk.csv_text(), predictions, 5) == expected
    assert expected == output_table(frame, predictions, 5, None).to_csv(index=False).encode() + \
        output_table(frame, predictions, 5, None).to_csv(index=False, header=False).encode()


def test_rows_that_pandas_would_pad_or_failed_rows_are_written_as_parsed():
    """A short row has too few cells to be written as it is; with ``--on-error null`` the failed rows'
    predictions are empty, written beside their own text."""
    short = CsvChunk(1, 2, b"a,b,c\n", b"1,2,3\n4,5\n", None)
    assert short.csv_text() is None
    chunk = CsvChunk(1, 3, b"a,b\r\n", b"1,2\r\n\r\n3,4\r\n5,6\r\n", None)
    text = chunk.csv_text()
    assert text.rows == [b"1,2", b"3,4", b"5,6"] and text.header == b"a,b"
    written = _written(text, np.array([7, 9]), 3, good=[0, 2])
    assert written == b"a,b,prediction\n1,2,7\n3,4,\n5,6,9\n1,2,7\n3,4,\n5,6,9\n"
    assert written == _written(chunk.frame(), np.array([7, 9]), 3, good=[0, 2])


def test_crlf_blank_lines_and_chunks_through_the_command(tmp_path):
    frame = iris_rows(9)
    lines = frame.to_csv(index=False).splitlines()
    source = tmp_path / "in.csv"
    source.write_bytes(("\r\n".join(lines[:4] + [""] + lines[4:]) + "\r\n").encode())
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(source), "-o", str(tmp_path / "out.csv"),
                        "--batch-size", "4")
    assert code == 0, log
    written = pd.read_csv(tmp_path / "out.csv")
    pd.testing.assert_frame_equal(written[COLUMNS], frame)
    assert written["prediction"].tolist() == [0, 1, 2] * 3
    assert b"\r" not in (tmp_path / "out.csv").read_bytes()


def test_a_directory_input_is_refused_in_one_line(tmp_path):
    code, log = predict(tmp_path, "-m", str(IRIS), "-i", str(tmp_path), "-o", str(tmp_path / "out.csv"))
    assert code == 1 and "is a directory: score one file, or a dataset with --engine spark" in log
    assert "Traceback" not in log
