"""Requests that cannot take the server down: the body is read exactly as framed and within its
limit, and what it decodes into is bounded (rows, cells, JSON depth, decoded bytes) in every
format, before it is built.

Framing is tested on real gunicorn servers with raw sockets (a client that half-closes, chunks
that lie); the decode limits in-process, with small limits, and on a real server where only a
worker's survival shows the answer (a Parquet file that decompresses to 100 million rows)."""
from __future__ import annotations

import io
import json
import socket
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ..conftest import FIXTURES, InProcessServer, RunningServer, assert_error, worker_pids
from ..serving.test_mlflow_observed_iris import COLUMNS, RECORD

LIMIT = 10_000
CSV_HEADER = ",".join(COLUMNS)
CSV_ROW = "5.1,3.5,1.4,0.2"
PARQUET = "application/vnd.apache.parquet"


def csv_rows(count: int) -> bytes:
    return ("\n".join([CSV_HEADER] + [CSV_ROW] * count) + "\n").encode()


# --- raw HTTP -------------------------------------------------------------------------------------

class RawResponse:
    """An HTTP/1.1 response read off a socket until the server closed it."""

    def __init__(self, data: bytes, reset: bool) -> None:
        self.raw, self.reset = data, reset
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else None
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def json(self) -> dict:
        return json.loads(self.body)


def send_raw(server: RunningServer, head: str, body: bytes = b"", half_close: bool = False,
             timeout: float = 30) -> RawResponse:
    """Send ``head`` (request line and headers, without the blank line) and ``body`` as they are;
    ``half_close`` then shuts the sending side, as a client that stops sending does."""
    request = (head + "\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received, reset = b"", False
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            reset = True
    return RawResponse(received, reset)


def chunked(body: bytes, size: int = 4096) -> bytes:
    """``body`` in chunked transfer encoding, with its last chunk."""
    chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(chunks) + b"0\r\n\r\n"


def post_head(content_type: str, framing: str) -> str:
    return f"POST /invocations HTTP/1.1\r\nContent-Type: {content_type}\r\n{framing}"


def assert_json_error(response: RawResponse, status: int, *fragments: str) -> dict:
    assert response.status == status, response.raw[:500]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error_code"] == "BAD_REQUEST"
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    assert "stack_trace" not in body and "/" not in body["message"]
    return body


#: Both worker classes: ``thread`` reads a request whole in its event loop before the app reads
#: it again from memory, ``sync`` lets the app read it from the socket.
WORKER_CLASSES = ["thread", "sync"]


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def worker_class(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def limited_server(worker_class):
    """iris, with bodies of at most 10,000 bytes."""
    server = RunningServer(FIXTURES / "iris", workers=1, env={"SCORING_SERVER_MAX_REQUEST_BYTES": str(LIMIT),
                                                             "SCORING_SERVER_WORKER_CLASS": worker_class})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def default_server(worker_class):
    """iris with the default limits (100 MB bodies, a million rows)."""
    server = RunningServer(FIXTURES / "iris", workers=1, env={"SCORING_SERVER_WORKER_CLASS": worker_class})
    yield server
    server.stop()


@pytest.fixture
def same_workers(limited_server, default_server):
    """No test may kill a worker: their pids are the same afterwards."""
    before = {server.port: sorted(worker_pids(server.process.pid)) for server in (limited_server, default_server)}
    yield
    for server in (limited_server, default_server):
        assert server.get("/ping").status_code == 200
        assert sorted(worker_pids(server.process.pid)) == before[server.port]


# --- 1. over the limit is 413, chunked or not ----------------------------------------------------

def test_a_chunked_body_over_the_limit_is_413_not_cut_and_scored(limited_server, same_workers):
    body = csv_rows(1000)
    assert len(body) > LIMIT
    response = send_raw(limited_server, post_head("text/csv", "Transfer-Encoding: chunked"), chunked(body))
    assert_json_error(response, 413, "at most 10,000 bytes", "max_request_bytes")


def test_the_same_body_with_a_content_length_is_413(limited_server, same_workers):
    body = csv_rows(1000)
    response = send_raw(limited_server, post_head("text/csv", f"Content-Length: {len(body)}"), body)
    assert_json_error(response, 413, "max_request_bytes")


def test_a_chunked_body_exactly_at_the_limit_is_scored(limited_server, same_workers):
    body = csv_rows(1000)[:LIMIT]
    body = body[:body.rindex(b"\n") + 1]
    rows = body.count(b"\n") - 1
    padded = body + b"\n" * (LIMIT - len(body))  # blank lines: pandas skips them
    response = send_raw(limited_server, post_head("text/csv", "Transfer-Encoding: chunked"), chunked(padded, 333))
    assert response.status == 200, response.raw[:300]
    assert len(response.json()["predictions"]) == rows
    over = send_raw(limited_server, post_head("text/csv", "Transfer-Encoding: chunked"), chunked(padded + b"\n"))
    assert over.status == 413


def test_a_chunked_json_body_is_scored(default_server, same_workers):
    body = json.dumps({"dataframe_records": [RECORD] * 3}).encode()
    response = send_raw(default_server, post_head("application/json", "Transfer-Encoding: chunked"), chunked(body, 7))
    assert response.status == 200
    assert response.json() == {"predictions": [0, 0, 0]}


# --- 2. a body shorter than its Content-Length is never scored -----------------------------------

def test_a_body_shorter_than_its_content_length_is_400_and_not_scored(default_server, same_workers):
    declared, sent = csv_rows(1000), csv_rows(498)
    response = send_raw(default_server, post_head("text/csv", f"Content-Length: {len(declared)}"), sent,
                        half_close=True)
    assert_json_error(response, 400, "shorter than its Content-Length", f"{len(sent):,} of {len(declared):,}")
    assert b"predictions" not in response.body


def test_a_json_body_cut_at_a_valid_prefix_is_400(default_server, same_workers):
    """``[RECORD] * 2`` cut after the first record plus ``]}`` would be valid JSON; it is never parsed."""
    whole = json.dumps({"dataframe_records": [RECORD] * 2}).encode()
    sent = json.dumps({"dataframe_records": [RECORD]}).encode()
    response = send_raw(default_server, post_head("application/json", f"Content-Length: {len(whole)}"), sent,
                        half_close=True)
    assert_json_error(response, 400, "shorter than its Content-Length")


# --- 3. malformed chunk framing is a JSON 400 ----------------------------------------------------

BAD_FRAMING = {
    "size_not_hex": b"zz\r\nhello\r\n0\r\n\r\n",
    "size_negative": b"-5\r\nhello\r\n0\r\n\r\n",
    "missing_crlf_after_data": b"5\r\nhelloXX0\r\n\r\n",
    "chunk_longer_than_sent": b"100\r\nhello",
    "no_last_chunk": b"5\r\nhello\r\n",
    "size_line_endless": b"1" * 20_000,
    "bad_chunk_extension": b"5;=\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("framing", BAD_FRAMING.values(), ids=BAD_FRAMING.keys())
def test_malformed_chunked_framing_is_a_json_400(default_server, same_workers, framing):
    response = send_raw(default_server, post_head("text/csv", "Transfer-Encoding: chunked"), framing,
                        half_close=True)
    assert_json_error(response, 400, "could not be read")


# --- 4. a Parquet bomb is refused from its footer -------------------------------------------------

@pytest.fixture(scope="module")
def parquet_bomb() -> bytes:
    """About 1.8 MB of Parquet holding 100 million rows of four doubles (3.2 GB decoded)."""
    batch = pa.table({name: pa.array([0.0]).take(pa.array([0] * 1_000_000)) for name in COLUMNS})
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, batch.schema, compression="zstd") as writer:
        for _ in range(100):
            writer.write_table(batch, row_group_size=1_000_000)
    return sink.getvalue()


def test_a_parquet_file_of_100_million_rows_is_refused_before_decompressing(default_server, same_workers,
                                                                              parquet_bomb):
    assert len(parquet_bomb) < 2_500_000
    started = time.monotonic()
    response = default_server.post(parquet_bomb, PARQUET)
    assert_error(response, 400, "BAD_REQUEST", "100,000,000 rows", "at most 1,000,000", "max_rows")
    assert time.monotonic() - started < 5


def parquet(frame: pd.DataFrame, **options) -> bytes:
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False, **options)
    return sink.getvalue()


def test_a_parquet_column_of_one_long_string_repeated_is_refused(default_server, same_workers):
    """Dictionary encoding stores the string once: a 25 KB file, 500 MB once every row holds it."""
    frame = pd.DataFrame({"sepal_length": ["x" * 20_000] * 25_000})
    body = parquet(frame, compression="zstd")
    assert len(body) < 50_000
    assert_error(default_server.post(body, PARQUET), 400, "BAD_REQUEST", "would decode to", "max_request_bytes")


# --- 5. decode limits, in every format -----------------------------------------------------------

@pytest.fixture(scope="module")
def small_limits_app() -> InProcessServer:
    return InProcessServer(FIXTURES / "iris", max_rows=10, max_cells=40, max_json_depth=8)


@pytest.fixture(scope="module")
def small_limits_nosig_app() -> InProcessServer:
    return InProcessServer(FIXTURES / "iris_nosig", max_rows=10, max_cells=40, max_request_bytes=100_000)


def split(rows: int) -> dict:
    return {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]] * rows}}


OVER_ROWS = {
    "dataframe_split": split(11),
    "dataframe_records": {"dataframe_records": [RECORD] * 11},
    "instances": {"instances": [RECORD] * 11},
    "inputs_columns": {"inputs": {name: [1.0] * 11 for name in COLUMNS}},
}


@pytest.mark.parametrize("body", OVER_ROWS.values(), ids=OVER_ROWS.keys())
def test_json_over_max_rows_is_400_naming_it(small_limits_app, body):
    assert_error(small_limits_app.post(body), 400, "BAD_REQUEST", "11 rows", "at most 10", "max_rows")


@pytest.mark.parametrize("body", [split(10), {"dataframe_records": [RECORD] * 10}], ids=["split", "records"])
def test_json_at_the_limits_is_scored(small_limits_app, body):
    assert small_limits_app.post(body).json() == {"predictions": [0] * 10}


def test_csv_and_parquet_over_max_rows_are_400(small_limits_app):
    assert_error(small_limits_app.post(csv_rows(11), "text/csv"), 400, "BAD_REQUEST", "more than 10 rows",
                 "max_rows")
    assert small_limits_app.post(csv_rows(10), "text/csv").json() == {"predictions": [0] * 10}
    frame = pd.DataFrame([RECORD] * 11)
    assert_error(small_limits_app.post(parquet(frame), PARQUET), 400, "BAD_REQUEST", "11 rows", "max_rows")
    assert small_limits_app.post(parquet(frame[:10]), PARQUET).json() == {"predictions": [0] * 10}


def test_mlflow1_bodies_are_bounded_too():
    app = InProcessServer(FIXTURES / "iris", protocol="mlflow1", max_rows=10)
    body = {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]] * 11}
    assert_error(app.post(body), 400, "BAD_REQUEST", "max_rows")
    assert app.post({"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]] * 10}).json() == [0] * 10


def test_cells_count_the_union_of_record_keys(small_limits_app):
    """pandas pads every record to every key any record names: 10 records of 5 distinct keys is 50 cells."""
    records = [{**RECORD, f"extra{i}": 1.0} for i in range(10)]
    assert_error(small_limits_app.post({"dataframe_records": records}), 400, "BAD_REQUEST",
                 "140 cells (10 rows × 14 columns)", "max_cells")


def test_cells_count_the_longest_split_row(small_limits_app):
    data = [[5.1, 3.5, 1.4, 0.2]] * 9 + [[1.0] * 40]
    assert_error(small_limits_app.post({"dataframe_split": {"columns": COLUMNS, "data": data}}), 400,
                 "BAD_REQUEST", "max_cells")


def test_a_wide_csv_header_over_short_rows_is_refused_before_padding(small_limits_app):
    body = (",".join(f"c{i}" for i in range(20)) + "\n" + "1\n" * 3).encode()
    assert_error(small_limits_app.post(body, "text/csv"), 400, "BAD_REQUEST", "max_cells")
    header_alone = (",".join(f"c{i}" for i in range(41)) + "\n").encode()
    assert_error(small_limits_app.post(header_alone, "text/csv"), 400, "BAD_REQUEST", "41 columns", "max_cells")
    quoted = ("\n\n" + ",".join(f'"c,{i}"' for i in range(20)) + "\n" + "1\n" * 3).encode()  # read by pandas
    assert_error(small_limits_app.post(quoted, "text/csv"), 400, "BAD_REQUEST", "20 columns", "max_cells")


def test_a_wide_parquet_file_is_refused(small_limits_app):
    frame = pd.DataFrame({f"c{i}": [1.0] * 2 for i in range(21)})
    assert_error(small_limits_app.post(parquet(frame), PARQUET), 400, "BAD_REQUEST", "max_cells")


def test_a_parquet_list_column_counts_its_values(small_limits_app):
    frame = pd.DataFrame({"sepal_length": [[1.0] * 100]})
    assert_error(small_limits_app.post(parquet(frame), PARQUET), 400, "BAD_REQUEST", "100 values", "max_cells")


def test_tensor_cells_are_its_scalars(small_limits_nosig_app):
    assert_error(small_limits_nosig_app.post({"instances": [[[1.0] * 5] * 9]}), 400, "BAD_REQUEST",
                 "45 cells", "max_cells")


def test_a_string_tensor_as_wide_as_its_longest_string_is_refused(small_limits_nosig_app):
    """numpy stores each of the 31 strings 10,000 characters wide: 1.2 MB from a 10 KB body."""
    body = {"inputs": [["x" * 10_000] + [""] * 30]}
    assert_error(small_limits_nosig_app.post(body), 400, "BAD_REQUEST", "31 strings", "max_request_bytes")


def test_json_nested_deeper_than_max_json_depth_is_400(small_limits_app):
    deep = {"dataframe_split": {"columns": ["sepal_length"], "data": [[[[[[[[1.0]]]]]]]]}}
    assert_error(small_limits_app.post(deep), 400, "BAD_REQUEST", "more than 8 levels deep", "max_json_depth")
    # brackets inside strings are not nesting
    text = {"dataframe_records": [{**RECORD, "note": "[[[[[[[[[[[[{{{{{{{{{{"}]}
    assert small_limits_app.post(text).status_code == 200


def test_nesting_is_refused_before_it_reaches_the_model_or_the_encoder(tmp_path):
    """Echoed back, 900 levels overflowed the encoder's recursion: a 500. Now a 400 before decoding."""
    from flavors.signature import ModelSignature

    from ..serving.test_saved_custom_models import SIGNATURE, serve_echo

    app = serve_echo(tmp_path, ModelSignature(params=SIGNATURE.params))
    for depth in (300, 900):
        body = '{"messages": [%s], "shape": "x"}' % ("[" * depth + "1" + "]" * depth)
        assert_error(app.post(body), 400, "BAD_REQUEST", "more than 64 levels deep", "max_json_depth")
    body = '{"messages": [%s], "shape": "x"}' % ("[" * 60 + "1" + "]" * 60)
    assert app.post(body).status_code == 200


def test_default_limits_refuse_a_records_body_whose_keys_all_differ():
    """5,000 records of one distinct key each: 60 KB of JSON that pandas would pad into 25 million
    cells (60,000 of them, 600 KB, into 3.6 billion: 29 GB)."""
    app = InProcessServer(FIXTURES / "iris")
    body = {"dataframe_records": [{f"k{i}": 1} for i in range(5_000)]}
    assert_error(app.post(body), 400, "BAD_REQUEST", "max_cells")


def test_limits_apply_to_requests_only(small_limits_app):
    """The batch ``predict`` command scores local files: no limits there, even on a thread that
    served a limited request a moment ago."""
    from scoring_server.decoding.csv_body import decode_csv
    from scoring_server.decoding.limits import NO_LIMITS, active_limits

    assert small_limits_app.post(csv_rows(11), "text/csv").status_code == 400
    assert active_limits() is NO_LIMITS
    assert len(decode_csv(csv_rows(11), None)) == 11


def test_max_json_depth_is_capped_where_answers_stay_encodable():
    from scoring_server.config import ConfigError, load_config

    assert load_config(env={}, overrides={"max_json_depth": 200}).max_json_depth == 200
    with pytest.raises(ConfigError, match="max_json_depth"):
        load_config(env={}, overrides={"max_json_depth": 201})
