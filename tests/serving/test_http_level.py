"""HTTP-level answers as MLflow 3.17 gives them (observed against `mlflow models serve`): a trailing
slash is redirected (307) to the route without it, an HTTP/1.1 request without ``Host`` is a 400;
and what gunicorn's parser refuses (a duplicate Content-Type, ...) is a JSON error, never a page."""
from __future__ import annotations

import json

import pytest

from ..conftest import FIXTURES, InProcessServer, RunningServer, assert_error, raw_exchange


@pytest.fixture(scope="module")
def app():
    return InProcessServer(FIXTURES / "iris")


@pytest.mark.parametrize("method, path, location", [
    ("POST", "/invocations/", "http://localhost/invocations"),
    ("POST", "/invocations//?a=1&b=%20", "http://localhost/invocations?a=1&b=%20"),
    ("GET", "/invocations/", "http://localhost/invocations"),  # the route exists for another method
    ("GET", "/ping/", "http://localhost/ping"),
    ("GET", "/health/", "http://localhost/health"),
    ("GET", "/version/", "http://localhost/version"),
])
def test_a_trailing_slash_is_redirected_to_the_route(app, method, path, location):
    response = app.request(method, path, b"{}", {"Content-Type": "application/json"})
    assert response.status_code == 307
    assert response.headers["Location"] == location
    assert response.content == b"" and "Content-Type" not in response.headers


@pytest.mark.parametrize("path", ["/nope/", "/", "/invocations/x/", "//invocations", "/ping//x"])
def test_a_trailing_slash_on_no_route_is_still_404(app, path):
    assert_error(app.get(path), 404, "ENDPOINT_NOT_FOUND")


def test_the_redirect_names_the_host_the_client_used(app):
    response = app.request("POST", "/invocations/", b"", {"Host": "example.com:99"})
    assert response.headers["Location"] == "http://example.com:99/invocations"



@pytest.fixture(scope="module", params=["thread", "sync"])
def server(request):
    server = RunningServer(FIXTURES / "iris", workers=1, env={"SCORING_SERVER_WORKER_CLASS": request.param})
    yield server
    server.stop()


@pytest.mark.parametrize("request_bytes, fragment", [
    (b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n", "must have a Host header"),
    ((b"POST /invocations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Type: text/csv\r\n"
      b"Content-Length: 2\r\n\r\n{}"), "CONTENT-TYPE"),
    (b"GET /ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HOST"),
    (b"POST /invocations HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "CONTENT-LENGTH"),
    (b"G@T /ping HTTP/1.1\r\nHost: a\r\n\r\n", "method"),
    (b"GET /ping HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", "Header"),
], ids=["no_host", "two_content_types", "two_hosts", "two_lengths", "bad_method", "bad_header_name"])
def test_requests_gunicorn_refuses_get_a_json_400(server, request_bytes, fragment):
    status, headers, body = raw_exchange(server.port, request_bytes)
    assert status == 400 and headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error_code"] == "BAD_REQUEST" and fragment.lower() in answer["message"].lower()


@pytest.mark.parametrize("request_bytes", [
    b"GET /ping HTTP/1.0\r\n\r\n",  # Host is optional before HTTP/1.1
    b"GET /ping HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",  # empty, as MLflow accepts
])
def test_host_is_required_of_http11_only(server, request_bytes):
    assert raw_exchange(server.port, request_bytes)[0] == 200


def test_a_trailing_slash_is_redirected_by_a_real_server(server):
    status, headers, body = raw_exchange(
        server.port, b"POST /invocations/?a=1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert (status, headers["location"], body) == (307, "http://h:1/invocations?a=1", b"")
