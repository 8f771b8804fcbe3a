"""The dashboard's door: credentials before any body is read, body limits, malformed callback bodies, Origin and Host.

Flask's test client drives the real app (create_app) with a stub backend client; a
``wsgi.input`` that raises when read proves a refused request's body is never touched.
"""

from __future__ import annotations

import base64
import io
import json

import psutil
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.dash import TINY_PNG

ROUTES = [
    ("GET", "/"),
    ("GET", "/_dash-layout"),
    ("GET", "/_dash-dependencies"),
    ("POST", "/_dash-update-component"),
    ("POST", "/api/v1/classify"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/history"),
    ("GET", "/assets/style.css"),
    ("GET", "/_favicon.ico"),
]
GOOD = ("alice", "s3cret")


def basic(raw: bytes) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


BAD_CREDENTIALS = {
    "missing": {},
    "wrong password": basic(b"alice:wrong"),
    "unknown user": basic(b"mallory:s3cret"),
    "not base64": {"Authorization": "Basic !!!not-base64!!!"},
    "no colon": basic(b"alices3cret"),
    "not utf-8": basic(b"\xff\xfealice:s3cret"),
    "empty": {"Authorization": "Basic "},
    "scheme only": {"Authorization": "Basic"},
    "empty name": basic(b":s3cret"),
    "empty password": basic(b"alice:"),
    "bearer": {"Authorization": "Bearer abc.def.ghi"},
    "password prefix": basic(b"alice:s3cre"),
}


class ExplodingInput(io.RawIOBase):
    """A wsgi.input that fails the test if anything reads it."""

    reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        ExplodingInput.reads += 1
        raise AssertionError("the request body was read")


@pytest.fixture
def make_app(stub_dashboard):
    return stub_dashboard


@pytest.fixture
def locked(make_app):
    return make_app(users=(GOOD,))


def body_unread(headers: dict, length: int = 150 * 1024 * 1024) -> dict:
    """Keywords for the test client: a declared body of ``length`` bytes behind an input that must not be read."""
    return {"headers": {"Content-Type": "application/json", **headers},
            "environ_overrides": {"wsgi.input": ExplodingInput(), "CONTENT_LENGTH": str(length)}}


@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
def test_every_route_refuses_bad_credentials_before_reading_the_body(locked, method, path, credentials):
    http, store, client = locked
    ExplodingInput.reads = 0
    response = http.open(path, method=method, **body_unread(BAD_CREDENTIALS[credentials]))
    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert ExplodingInput.reads == 0
    if path.startswith(("/api/", "/_dash-")):  # JSON routes get a JSON error
        assert response.get_json()["error"]["code"] == "unauthorized"
    else:
        assert "Login required" in response.get_data(as_text=True)
    assert client.classified == 0 and store.recent() == []


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_route_serves_the_right_credentials(locked, method, path):
    http, _, _ = locked
    if method == "GET":
        response = http.get(path, headers=basic(b"alice:s3cret"))
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    else:  # an authenticated but empty POST is a client error, never a 401 or a 500
        response = http.post(path, data=b"", headers=basic(b"alice:s3cret"))
        assert response.status_code == 400, response.get_data(as_text=True)[:300]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(st.text(max_size=60), st.binary(max_size=40).map(
    lambda raw: "Basic " + base64.b64encode(raw).decode("ascii"))))
def test_any_authorization_header_is_a_401_never_a_500(locked, header):
    http, _, _ = locked
    for body in (b"{}", b"null"):
        try:
            response = http.post("/_dash-update-component", data=body,
                                 headers={"Authorization": header, "Content-Type": "application/json"})
        except (ValueError, UnicodeError):  # werkzeug's test client refuses some header text outright
            return
        assert response.status_code == 401, response.get_data(as_text=True)[:200]


def test_an_unauthenticated_150_mb_body_is_refused_without_growing_the_process(locked):
    http, _, _ = locked
    process = psutil.Process()
    before = process.memory_info().rss
    body = b'{"output": "x", "padding": "' + b"A" * (150 * 1024 * 1024) + b'"}'
    stream = CountingInput(body)
    del body
    response = http.post("/_dash-update-component", headers={"Content-Type": "application/json"},
                         environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": str(len(stream.data))})
    assert response.status_code == 401
    assert stream.consumed == 0
    stream.data = b""
    assert process.memory_info().rss - before < 50 * 1024 * 1024


class CountingInput(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.data[self.consumed:self.consumed + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.consumed += len(chunk)
        return len(chunk)


def callback_output(http, auth: dict, output_id: str) -> str:
    """The full output key of the callback that writes ``output_id`` (as Dash's renderer sends it)."""
    for dependency in http.get("/_dash-dependencies", headers=auth).get_json():
        if output_id in dependency["output"]:
            return dependency["output"]
    raise AssertionError(f"no callback writes {output_id}")


def output_list(output: str) -> list[dict]:
    """The ``outputs`` list Dash's renderer sends for a callback's output key (``..a.b...c.d..`` or ``a.b``)."""
    keys = output.strip(".").split("...") if output.startswith("..") else [output]
    return [dict(zip(("id", "property"), key.rsplit(".", 1))) for key in keys]


MALFORMED = [
    b"{}", b"null", b"[]", b'"text"', b"123", b"true", b"not json at all", b"{\"output\":", b"[" * 100_000,
    b'{"output": 5}', b'{"output": ["a"]}', b'{"output": "no-such.children"}',
]


@pytest.mark.parametrize("body", MALFORMED, ids=[b[:20].decode() for b in MALFORMED])
def test_an_authenticated_malformed_callback_body_is_a_400(locked, body):
    http, _, _ = locked
    auth = basic(b"alice:s3cret")
    response = http.post("/_dash-update-component", data=body, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("shape", [
    {"inputs": "x"}, {"inputs": [5]}, {"inputs": [{"id": 5, "property": "n_intervals"}]},
    {"inputs": [{"id": "status-interval"}]}, {"inputs": []}, {"inputs": [[[{"id": "a", "property": "b"}]]]},
    {"state": {"a": 1}}, {"changedPropIds": 5}, {"changedPropIds": [5]}, {"outputs": "x"}, {"outputs": [7, 8]},
])
def test_wrong_types_inside_a_callback_body_are_a_400(locked, shape):
    http, _, _ = locked
    auth = basic(b"alice:s3cret")
    output = callback_output(http, auth, "status.children")
    outputs = output_list(output)
    body = {"output": output, "outputs": outputs,
            "inputs": [{"id": "status-interval", "property": "n_intervals", "value": 1}],
            "changedPropIds": ["status-interval.n_intervals"], "state": []}
    body.update(shape)
    response = http.post("/_dash-update-component", data=json.dumps(body, default=str),
                         headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    # the well-formed body still works
    body = {key: value for key, value in body.items() if key not in shape}
    body.setdefault("inputs", [{"id": "status-interval", "property": "n_intervals", "value": 1}])
    body.setdefault("state", [])
    body.setdefault("changedPropIds", ["status-interval.n_intervals"])
    body.setdefault("outputs", outputs)
    response = http.post("/_dash-update-component", json=body, headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert "Backend ready" in response.get_data(as_text=True)


def test_callback_route_and_api_have_separate_body_limits(make_app):
    http, store, client = make_app(max_image_bytes=1024 * 1024, callback_max_bytes=3 * 1024 * 1024)
    # over the callback limit: 413 before reading
    ExplodingInput.reads = 0
    response = http.post("/_dash-update-component", **body_unread({}, 3 * 1024 * 1024 + 1))
    assert response.status_code == 413 and ExplodingInput.reads == 0
    # under it but over the API's one-image limit: the callback route takes it, the API does not
    response = http.post("/api/v1/classify", **body_unread({}, 2 * 1024 * 1024))
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"
    assert ExplodingInput.reads == 0 and client.classified == 0


def test_a_chunked_body_is_bounded_too(make_app):
    http, _, _ = make_app(max_image_bytes=1024 * 1024, callback_max_bytes=1024 * 1024)

    stream = CountingInput(b"A" * (4 * 1024 * 1024))  # no Content-Length: read only up to the limit
    response = http.post("/_dash-update-component", headers={"Content-Type": "application/json"},
                         environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": "", "wsgi.input_terminated": True,
                                            "HTTP_TRANSFER_ENCODING": "chunked"})
    # refused (413), or cut at the limit so the JSON is incomplete (400): either way never read past the limit
    assert response.status_code in (400, 413)
    assert stream.consumed <= 1024 * 1024 + 64 * 1024


def test_default_callback_limit_fits_max_files_base64_images(dash_settings):
    settings = dash_settings(max_image_bytes=2 * 1024 * 1024, max_files=4)
    assert settings.callback_body_limit >= 4 * 2 * 1024 * 1024 * 4 // 3
    assert settings.callback_body_limit < 4 * 2 * 1024 * 1024 * 4 // 3 + 4 * 1024 * 1024


# -- Origin -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:9999", "https://localhost.evil",
                                    "http://localhost@evil.example", "file://", "http://127.0.0.1", "garbage"])
def test_a_cross_origin_post_is_refused_and_records_nothing(make_app, origin):
    http, store, client = make_app()
    response = http.post("/api/v1/classify", data={"image": (io.BytesIO(TINY_PNG), "a.png")},
                         content_type="multipart/form-data", headers={"Origin": origin, "Host": "localhost:8050"})
    assert response.status_code == 403, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == "cross_origin"
    assert client.classified == 0 and store.recent() == []
    # a foreign Origin may still read
    assert http.get("/api/v1/history", headers={"Origin": origin, "Host": "localhost:8050"}).status_code == 200
    # same-origin and no-Origin posts are served
    for headers in ({"Origin": "http://localhost:8050"}, {}, {"Origin": "http://LOCALHOST:8050"}):
        response = http.post("/api/v1/classify", data={"image": (io.BytesIO(TINY_PNG), "a.png")},
                             content_type="multipart/form-data", headers={"Host": "localhost:8050", **headers})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert client.classified == 3 and len(store.recent()) == 3


def test_a_cross_origin_callback_cannot_clear_the_history(make_app):
    http, store, _ = make_app()
    http.post("/api/v1/classify", data=TINY_PNG, headers={"Host": "localhost:8050"})
    assert len(store.recent()) == 1
    response = http.post("/_dash-update-component", json={"output": "anything"},
                         headers={"Origin": "http://evil.example", "Host": "localhost:8050"})
    assert response.status_code == 403
    assert len(store.recent()) == 1


# -- Host -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example", "evil.example:8050", "localhost.evil.example", "127.0.0.2:8050",
                                  "bad host", "[::1", "localhost:notaport"])
def test_a_foreign_host_header_is_a_400_before_anything_else(locked, host):
    http, _, _ = locked
    ExplodingInput.reads = 0
    response = http.post("/api/v1/classify", **body_unread({"Host": host}))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == "bad_host"
    assert ExplodingInput.reads == 0
    assert http.get("/", headers={"Host": host}).status_code == 400
    # loopback names, any port, are served
    for allowed in ("localhost", "localhost:8050", "127.0.0.1:1234", "[::1]:8050", "LocalHost.", "[::1]"):
        assert http.get("/api/v1/history", headers={"Host": allowed, **basic(b"alice:s3cret")}).status_code == 200


def test_allowed_hosts_setting_and_star(make_app):
    http, _, _ = make_app(allowed_hosts=("dash.example",))
    assert http.get("/api/v1/history", headers={"Host": "dash.example:8050"}).status_code == 200
    assert http.get("/api/v1/history", headers={"Host": "localhost"}).status_code == 400
    http, _, _ = make_app(allowed_hosts=("*",))
    assert http.get("/api/v1/history", headers={"Host": "anything.example"}).status_code == 200


def test_the_bind_address_is_an_allowed_host(make_app):
    http, _, _ = make_app(host="10.1.2.3")
    assert http.get("/api/v1/history", headers={"Host": "10.1.2.3:8050"}).status_code == 200
    assert http.get("/api/v1/history", headers={"Host": "10.1.2.4:8050"}).status_code == 400


def test_a_wildcard_bind_allows_this_machines_names(make_app):
    import socket

    http, _, _ = make_app(host="0.0.0.0")
    assert http.get("/api/v1/history", headers={"Host": f"{socket.gethostname()}:8050"}).status_code == 200
    assert http.get("/api/v1/history", headers={"Host": "0.0.0.0:8050"}).status_code == 400
    assert http.get("/api/v1/history", headers={"Host": "evil.example"}).status_code == 400


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3),
                           max_leaves=8)


RANDOM_BODIES = st.fixed_dictionaries({}, optional={
    "output": st.sampled_from(["status.children", "..status.children...backend-store.data..", ""]) | st.text(max_size=10),
    "outputs": JSON_VALUES, "inputs": JSON_VALUES, "state": JSON_VALUES, "changedPropIds": JSON_VALUES})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_callback_body_is_a_500(locked, data):
    """Random shapes, and well-formed bodies for real callbacks with any values: 200/204/400, never a 500."""
    http, _, _ = locked
    auth = basic(b"alice:s3cret")
    if data.draw(st.booleans()):
        body = data.draw(RANDOM_BODIES)
    else:
        dependencies = [d for d in http.get("/_dash-dependencies", headers=auth).get_json()
                        if "status.children" in d["output"] or "clear-modal.is_open" in d["output"]]
        dependency = data.draw(st.sampled_from(dependencies))
        inputs = [{"id": i["id"], "property": i["property"], "value": data.draw(JSON_VALUES)}
                  for i in dependency["inputs"]]
        changed = data.draw(st.lists(st.sampled_from([f"{i['id']}.{i['property']}" for i in dependency["inputs"]] +
                                                     ["nothing.here"]), max_size=2))
        body = {"output": dependency["output"], "inputs": inputs, "state": [], "changedPropIds": changed,
                "outputs": [{"id": part.split(".")[0], "property": part.split(".")[1]}
                            for part in dependency["output"].strip(".").split("...")]}
    response = http.post("/_dash-update-component", json=body, headers=auth)
    assert response.status_code in (200, 204, 400), (body, response.get_data(as_text=True)[:300])
