"""Protocols as codecs, and the observation seam: every scored request reported once, with what
metrics and monitoring need, whoever listens."""
from __future__ import annotations

import json

import pytest

from flavors import load_model
from scoring_server.app import create_app
from scoring_server.config import PROTOCOLS, load_config
from scoring_server.errors import ScoringError
from scoring_server.monitoring import Observers, ScoringEvent
from scoring_server.pipeline import Scorer
from scoring_server.protocols import protocol_named, protocols

from ..conftest import FIXTURES

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SPLIT = {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}


@pytest.fixture(scope="module")
def iris():
    return load_model(str(FIXTURES / "iris"))


def listening_scorer(model, protocol: str = "mlflow2") -> tuple[Scorer, list[ScoringEvent]]:
    events: list[ScoringEvent] = []
    observers = Observers()
    observers.add(events.append)
    return Scorer(model, protocol, observers=observers), events


def test_every_configurable_protocol_is_implemented():
    assert set(protocols()) == set(PROTOCOLS)
    assert all(protocol_named(name).name == name for name in PROTOCOLS)


def test_a_scored_request_is_reported_with_its_facts(iris):
    scorer, events = listening_scorer(iris)
    assert scorer.score(json.dumps(SPLIT).encode(), "application/json") == b'{"predictions":[0,2]}'
    (event,) = events
    assert (event.model, event.version, event.protocol, event.format, event.rows) == ("iris", None, "mlflow2",
                                                                                       "dataframe_split", 2)
    assert (event.status, event.error_code, event.outcome) == (200, None, "success")
    assert min(event.decode_seconds, event.predict_seconds, event.encode_seconds) > 0
    assert event.seconds == pytest.approx(event.decode_seconds + event.predict_seconds + event.encode_seconds)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "fmt"),
    [
        (b"{", "application/json", 400, "BAD_REQUEST", None),
        (b"{}", "text/plain", 415, "BAD_REQUEST", None),
        (json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1]]}}).encode(), "application/json", 400,
         "INVALID_PARAMETER_VALUE", "dataframe_split"),
        (b"sepal_length\n1\n", "text/csv", 400, "INVALID_PARAMETER_VALUE", "csv"),
    ],
    ids=["bad_json", "unsupported_type", "missing_columns", "csv_missing_columns"],
)
def test_a_refused_request_is_reported_with_its_status_and_code(iris, body, content_type, status, code, fmt):
    scorer, events = listening_scorer(iris)
    with pytest.raises(ScoringError) as raised:
        scorer.score(body, content_type)
    (event,) = events
    assert (raised.value.status, raised.value.error_code) == (status, code)
    assert (event.status, event.error_code, event.format, event.outcome) == (status, code, fmt, "client_error")
    assert event.predict_seconds == 0


def test_a_1x_request_is_worded_by_its_protocol_without_rewriting_the_error(iris):
    """MLflow 1.x clients see BAD_REQUEST; the error raised by the schema step keeps its own code."""
    scorer, events = listening_scorer(iris, "auto")
    with pytest.raises(ScoringError) as raised:
        scorer.score(json.dumps({"columns": ["x"], "data": [[1]]}).encode(), "application/json")
    assert raised.value.error_code == "BAD_REQUEST" and events[0].protocol == "auto"
    assert raised.value.__cause__.error_code == "INVALID_PARAMETER_VALUE"
    assert events[0].error_code == "BAD_REQUEST" and events[0].format == "dataframe_split"


def test_an_observer_that_fails_never_fails_the_request(iris, caplog):
    observers = Observers()
    observers.add(lambda event: 1 / 0)
    seen = []
    observers.add(seen.append)
    scorer = Scorer(iris, observers=observers)
    assert scorer.score(json.dumps(SPLIT).encode(), "application/json") == b'{"predictions":[0,2]}'
    assert len(seen) == 1 and "Observer" in caplog.text


def test_observers_registered_on_the_app_hear_http_requests():
    app = create_app(load_config(env={}, overrides={"model_uri": str(FIXTURES / "iris")}))
    events = []
    app.extensions["observers"].add(events.append)
    client = app.test_client()
    assert client.post("/invocations", json=SPLIT).status_code == 200
    assert client.post("/invocations", data=b"x", content_type="text/plain").status_code == 415
    assert client.get("/ping").status_code == 200
    assert [(e.status, e.format) for e in events] == [(200, "dataframe_split"), (415, None)]


def test_a_many_model_server_parses_a_json_body_once(tmp_path, monkeypatch):
    """The model is chosen by ``params`` and the same parsed body is decoded."""
    import scoring_server.decoding.request as request_module

    parses = []
    real_parse = request_module.parse_json
    monkeypatch.setattr(request_module, "parse_json", lambda raw: parses.append(raw) or real_parse(raw))
    models = tmp_path / "models.yaml"
    models.write_text(f"iris: {FIXTURES / 'iris'}\nother: {FIXTURES / 'iris_nosig'}\n")
    app = create_app(load_config(env={}, overrides={"models_file": str(models)}))
    body = {**SPLIT, "params": {"model": "iris"}}
    response = app.test_client().post("/invocations", json=body)
    assert response.status_code == 200 and response.headers["X-Model-Name"] == "iris"
    assert len(parses) == 1
