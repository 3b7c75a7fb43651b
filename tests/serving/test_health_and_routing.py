"""Health, version and routing answers, including the ones load balancers send."""
from __future__ import annotations

from scoring_server import __version__


def test_ping_and_health_answer_newline(iris_app):
    for path in ("/ping", "/health"):
        response = iris_app.get(path)
        assert response.status_code == 200
        assert response.text == "\n"


def test_head_health_checks_are_200(iris_app):
    for path in ("/ping", "/health"):
        assert iris_app.head(path).status_code == 200


def test_version_is_the_package_version(iris_app):
    response = iris_app.get("/version")
    assert response.status_code == 200
    assert response.text == __version__


def test_get_invocations_is_405_json(iris_app):
    response = iris_app.get("/invocations")
    assert response.status_code == 405
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert "POST" in response.headers["Allow"]


def test_unknown_path_is_404_json(iris_app):
    response = iris_app.get("/nope")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_query_string_is_ignored(iris_app):
    response = iris_app.post({"inputs": {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                                         "petal_width": 0.2}}, path="/invocations?format=pandas-split")
    assert response.json() == {"predictions": [0]}
