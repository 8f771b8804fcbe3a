"""dashboard/api/fast_route.py answers POST /api/v1/classify exactly as the Flask view behind it would.

Each request goes once through ``ClassifyRoute`` and once straight to Flask (the app the route wraps, which
still has the classify view): status, headers that matter and JSON must be the same, for answers and errors.
"""

from __future__ import annotations

import gzip
import io
import json
import re

import pytest
from werkzeug.test import Client

from dashboard.api.fast_route import ClassifyRoute
from dashboard.app import create_app, stop_app
from tests.support.dash import StubClient, TINY_PNG


class FailingClient(StubClient):
    def classify(self, image_bytes: bytes, top_k: int = 5) -> dict:
        from model_backend.errors import BackendUnavailable

        raise BackendUnavailable("No model backend is answering.")


class WordyClient(StubClient):
    """Answers with long labels: an answer over the compression threshold."""

    def classify(self, image_bytes: bytes, top_k: int = 5) -> dict:
        reply = super().classify(image_bytes, top_k)
        reply["predictions"] = [{"index": i, "label": f"label {i} " + "x" * 500, "p": 0.1} for i in range(5)]
        return reply


class BrokenClient(StubClient):
    def classify(self, image_bytes: bytes, top_k: int = 5) -> dict:
        raise RuntimeError("a bug")


@pytest.fixture
def pair(dash_settings):
    """make(client, **settings) -> (through the fast route, straight to Flask, the route)."""
    apps = []

    def make(client=None, **overrides):
        app = create_app(dash_settings(**overrides), client or StubClient())
        apps.append(app)
        route = app.server.extensions["warmserve"]["guard"].app
        assert isinstance(route, ClassifyRoute)
        return Client(route), Client(route.app), route

    yield make
    for app in apps:
        stop_app(app)


def same_answer(fast, flask, make_request) -> dict:
    one, two = fast.post("/api/v1/classify", **make_request()), flask.post("/api/v1/classify", **make_request())
    assert one.status_code == two.status_code, (one.get_data()[:200], two.get_data()[:200])
    assert one.headers["Content-Type"] == two.headers["Content-Type"] == "application/json"
    assert one.headers.get("Content-Encoding") == two.headers.get("Content-Encoding")
    assert one.headers.get("Vary") == two.headers.get("Vary")
    first, second = (json.loads(gzip.decompress(r.get_data()) if r.headers.get("Content-Encoding") == "gzip" else r.get_data())
                     for r in (one, two))
    for answer in (first, second):  # measured per request: differs between the two
        answer.pop("roundtrip_ms", None)
    assert first == second
    assert one.get_data().endswith(b"\n") or one.headers.get("Content-Encoding")
    return first


def multipart(data: bytes, name: str = "cat.png", field: str = "image") -> dict:
    return {"data": {field: (io.BytesIO(data), name)}, "content_type": "multipart/form-data"}


def test_an_answer_is_the_flask_views_answer(pair):
    fast, flask, _ = pair()
    answer = same_answer(fast, flask, lambda: multipart(TINY_PNG))
    assert answer["image"] == "cat.png" and answer["predictions"][0]["label"] == "Egyptian cat"
    assert same_answer(fast, flask, lambda: {"data": TINY_PNG, "headers": {"X-Image-Name": "raw.png"}})["image"] == "raw.png"


@pytest.mark.parametrize("case", ["no image field", "empty body", "over the image limit", "over the request limit"])
def test_client_errors_are_the_flask_views_errors(pair, case):
    fast, flask, _ = pair(max_image_bytes=1024 * 1024)
    make_request = {
        "no image field": lambda: multipart(TINY_PNG, field="file"),
        "empty body": lambda: {"data": b""},
        "over the image limit": lambda: {"data": b"\xff" * (1024 * 1024 + 10)},
        "over the request limit": lambda: multipart(b"\xff" * (2 * 1024 * 1024)),
    }[case]
    error = same_answer(fast, flask, make_request)["error"]
    assert error["code"] == {"no image field": "bad_request", "empty body": "bad_request"}.get(case, "too_large")


def test_backend_errors_are_the_flask_views_errors(pair):
    fast, flask, _ = pair(FailingClient())
    assert same_answer(fast, flask, lambda: multipart(TINY_PNG))["error"]["code"] == "unavailable"


def test_a_bug_is_a_json_500_and_logged(pair, caplog):
    fast, flask, _ = pair(BrokenClient())
    flask.application.__self__.config["PROPAGATE_EXCEPTIONS"] = False  # as when served (the test client re-raises)
    with caplog.at_level("ERROR"):
        error = same_answer(fast, flask, lambda: multipart(TINY_PNG))["error"]
    assert error["code"] == "http_error"
    assert any("a bug" in (record.exc_text or str(record.exc_info)) for record in caplog.records)


def test_a_large_answer_is_gzipped_when_the_client_accepts_it(pair):
    fast, flask, _ = pair(WordyClient())
    route_answer = fast.post("/api/v1/classify", headers={"Accept-Encoding": "gzip"}, **multipart(TINY_PNG))
    assert route_answer.headers["Content-Encoding"] == "gzip"
    assert b'"label":"label 0 xxx' in gzip.decompress(route_answer.get_data())
    assert "Content-Encoding" not in fast.post("/api/v1/classify", **multipart(TINY_PNG)).headers
    same_answer(fast, flask, lambda: {"headers": {"Accept-Encoding": "gzip"}, **multipart(TINY_PNG)})


def test_other_methods_and_paths_go_to_flask(pair):
    fast, _, _ = pair()
    assert fast.get("/api/v1/classify").get_json()["error"]["code"] == "method_not_allowed"
    assert fast.get("/api/v1/health").status_code in (200, 503)
    assert fast.post("/api/v1/classify/extra").get_json()["error"]["code"] == "not_found"


# -- plain multipart bodies (what HTTP libraries and browsers send): read without werkzeug's Request ----------------

def plain_multipart(data: bytes, name: str = "cat.png", field: str = "image", boundary: str = "f3c9a2b1e0d84c6b",
                    content_type: str | None = None, line_break: bytes = b"\r\n") -> dict:
    """A body as requests, curl and the bench's lean generator write it (the test client's own boundary has dots)."""
    lb = line_break
    head = (f'--{boundary}'.encode() + lb + f'Content-Disposition: form-data; name="{field}"; filename="{name}"'.encode()
            + lb + b"Content-Type: image/png" + lb + lb)
    body = head + data + lb + f"--{boundary}--".encode() + lb
    return {"data": body, "content_type": content_type or f"multipart/form-data; boundary={boundary}"}


def without_roundtrip(data: bytes) -> bytes:
    """An answer's bytes without the web tier's own round trip (measured per request)."""
    return re.sub(rb'"roundtrip_ms":[0-9.e+-]+,?', b"", data)


def counting_requests(route: ClassifyRoute) -> list:
    """Make ``route`` record every werkzeug Request it builds; returns the list it appends to."""
    built = []
    base = route.request_class

    class Counted(base):
        def __init__(self, environ, *args, **kwargs):
            built.append(environ.get("CONTENT_TYPE"))
            super().__init__(environ, *args, **kwargs)

    route.request_class = Counted
    return built


def test_a_plain_multipart_answer_is_byte_for_byte_the_flask_views(pair):
    fast, flask, route = pair()
    built = counting_requests(route)
    make = lambda: plain_multipart(TINY_PNG, name="café.png")  # noqa: E731 - non-ASCII: the same JSON escaping
    one, two = fast.post("/api/v1/classify", **make()), flask.post("/api/v1/classify", **make())
    assert one.status_code == two.status_code == 200
    assert without_roundtrip(one.get_data()) == without_roundtrip(two.get_data())
    assert json.loads(one.get_data())["image"] == "café.png"
    assert built == []  # read straight from wsgi.input


def test_a_plain_multipart_without_the_image_field_is_the_flask_views_error(pair):
    fast, flask, route = pair()
    built = counting_requests(route)
    error = same_answer(fast, flask, lambda: plain_multipart(TINY_PNG, field="file"))["error"]
    assert error["code"] == "bad_request" and "Received: file" in error["message"]
    assert built == []


@pytest.mark.parametrize("case", ["quoted boundary", "bare LF line breaks", "boundary with a dot", "charset parameter"])
def test_other_multipart_shapes_go_to_werkzeug_with_the_same_bytes(pair, case):
    fast, flask, route = pair()
    built = counting_requests(route)
    make = {
        "quoted boundary": lambda: plain_multipart(TINY_PNG, content_type='multipart/form-data; boundary="f3c9a2b1e0d84c6b"'),
        "bare LF line breaks": lambda: plain_multipart(TINY_PNG, line_break=b"\n"),
        "boundary with a dot": lambda: plain_multipart(TINY_PNG, boundary="a.b"),
        "charset parameter": lambda: plain_multipart(TINY_PNG, content_type="multipart/form-data; boundary=f3c9a2b1e0d84c6b; charset=utf-8"),
    }[case]
    same_answer(fast, flask, make)
    assert len(built) == 1  # the Request path read it, from the bytes the plain reader put back


def test_a_plain_multipart_over_the_request_limit_is_refused_before_it_is_read(pair):
    fast, flask, route = pair(max_image_bytes=1024 * 1024)
    error = same_answer(fast, flask, lambda: plain_multipart(b"\xff" * (2 * 1024 * 1024)))["error"]
    assert error["code"] == "too_large"


def test_a_part_without_the_form_data_type_is_a_400_not_a_500(pair):
    """A Content-Disposition without its ``form-data`` type: werkzeug reads no field name (files it under None)."""
    fast, flask, _ = pair()
    body = (b'--f3c9a2b1e0d84c6b\r\nContent-Disposition: name="image"; filename="cat.png"\r\nContent-Type: image/png\r\n\r\n'
            + TINY_PNG + b"\r\n--f3c9a2b1e0d84c6b--\r\n")
    error = same_answer(fast, flask, lambda: {"data": body, "content_type": "multipart/form-data; boundary=f3c9a2b1e0d84c6b"})
    assert error["error"]["code"] == "bad_request" and error["error"]["message"].endswith("Received: no files")
