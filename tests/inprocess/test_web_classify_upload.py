"""POST /api/v1/classify's ways in, through the whole WSGI stack (guard, Flask, API) with a stub backend.

Each request shape answers what it answered when werkzeug's form parser read every body (the status and error
code here were taken from that version): the image, its filename, the first of several, a missing field with
the field names that were sent, a truncated or odd body, a wrong content type, parts over the limits.
"""

from __future__ import annotations

import io

import pytest

BOUNDARY = "----warmserveTestBoundary7MA4YWxkTrZu0gW"
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 100 + b"\xff\xd9"


@pytest.fixture
def api(stub_dashboard):
    return stub_dashboard


def part(name: str, data: bytes, filename: str | None = "photo.jpg", disposition: str | None = None) -> bytes:
    if disposition is None:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    content_type = "Content-Type: image/jpeg\r\n" if filename is not None else ""
    return f"Content-Disposition: {disposition}\r\n{content_type}\r\n".encode() + data


def multipart(*parts: bytes, boundary: str = BOUNDARY, close: bool = True) -> bytes:
    out = b"".join(b"--" + boundary.encode() + b"\r\n" + item + b"\r\n" for item in parts)
    return out + (b"--" + boundary.encode() + b"--\r\n" if close else b"")


def post(http, data: bytes, content_type: str = f"multipart/form-data; boundary={BOUNDARY}", **kwargs):
    return http.post("/api/v1/classify", data=data, headers={"Content-Type": content_type}, **kwargs)


def error_of(response, status: int, code: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == code
    return error["message"]


def test_the_image_field_is_classified_with_its_filename(api):
    http, store, client = api()
    response = post(http, multipart(part("note", b"hello", None), part("image", PHOTO, "chelsea.jpg")))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    answer = response.get_json()
    assert answer["image"] == "chelsea.jpg" and answer["predictions"][0]["label"] == "Egyptian cat"
    assert client.classified == 1
    store.flush()
    [row] = store.recent()
    assert row["image"] == "chelsea.jpg" and row["ok"] == 1 and row["sha256"] == answer["sha256"]


def test_the_first_of_several_image_files_is_classified(api):
    http, _, client = api()
    response = post(http, multipart(part("image", PHOTO, "first.jpg"), part("image", b"second", "second.jpg")))
    assert response.get_json()["image"] == "first.jpg"
    assert client.classified == 1


def test_filenames_are_cleaned_and_an_empty_one_gets_the_sha_prefix(api):
    http, _, _ = api()
    hostile = post(http, multipart(part("image", PHOTO, "evil\x1b[31m\x07.jpg"))).get_json()["image"]
    assert "\x1b" not in hostile and "\x07" not in hostile and hostile.endswith(".jpg")
    unnamed = post(http, multipart(part("image", PHOTO, ""))).get_json()
    assert unnamed["image"] and unnamed["sha256"].startswith(unnamed["image"][:8])
    encoded = post(http, multipart(part("image", PHOTO, disposition="form-data; name=\"image\"; filename*=UTF-8''caf%C3%A9.jpg")))
    assert encoded.get_json()["image"] == "café.jpg"


def test_a_body_without_the_image_field_names_the_files_sent(api):
    http, store, client = api()
    message = error_of(post(http, multipart(part("file", PHOTO), part("photo", PHOTO), part("file", PHOTO))), 400, "bad_request")
    assert message == "Expected a multipart file field named 'image'. Received: file, photo"
    message = error_of(post(http, multipart(part("image", b"only text", None))), 400, "bad_request")
    assert message.endswith("Received: no files")
    assert client.classified == 0


@pytest.mark.parametrize("shape", ["truncated", "no close delimiter", "bare LF", "no boundary parameter", "wrong boundary",
                                   "empty body", "not multipart at all"])
def test_malformed_multipart_bodies_are_a_400_without_the_backend(api, shape):
    http, _, client = api()
    whole = multipart(part("image", PHOTO))
    data, content_type = {
        "truncated": (whole[:len(whole) // 2], None),
        "no close delimiter": (multipart(part("image", PHOTO), close=False), None),
        "bare LF": (b"--" + BOUNDARY.encode() + b"\n" + part("image", PHOTO).replace(b"\r\n", b"\n"), None),
        "no boundary parameter": (whole, "multipart/form-data"),
        "wrong boundary": (whole, "multipart/form-data; boundary=somethingelse"),
        "empty body": (b"", None),
        "not multipart at all": (b"hello", None),
    }[shape]
    response = post(http, data, content_type) if content_type else post(http, data)
    assert error_of(response, 400, "bad_request").startswith("Expected a multipart file field named 'image'.")
    assert client.classified == 0


def test_bare_lf_bodies_that_werkzeug_reads_still_work(api):
    http, _, client = api()
    data = multipart(part("image", PHOTO, "lf.jpg")).replace(b"\r\n", b"\n")
    assert post(http, data).get_json()["image"] == "lf.jpg"
    assert client.classified == 1


def test_another_content_type_is_the_raw_image(api):
    http, _, client = api()
    response = post(http, PHOTO, "image/jpeg", query_string={"name": "raw.jpg"})
    assert response.get_json()["image"] == "raw.jpg"
    # multipart/mixed is not a form: its bytes are the image (and the stub backend classifies anything)
    assert post(http, multipart(part("image", PHOTO)), f"multipart/mixed; boundary={BOUNDARY}").status_code == 200
    assert client.classified == 2


def test_an_image_part_over_the_image_limit_is_a_413(api):
    http, store, client = api(max_image_bytes=64 * 1024)
    # under the request limit (image + 64 KB overhead) but over the image limit: refused before the backend, recorded
    message = error_of(post(http, multipart(part("image", b"\xff" * (100 * 1024)))), 413, "too_large")
    assert "the limit is" in message
    # over the request limit: refused from the headers
    error_of(post(http, multipart(part("image", b"\xff" * (200 * 1024)))), 413, "too_large")
    assert client.classified == 0
    store.flush()
    assert [row["error_code"] for row in store.recent()] == ["too_large"]


def test_too_many_parts_or_a_huge_form_field_is_a_413(api):
    http, _, client = api(max_image_bytes=4 * 1024 * 1024)
    many = multipart(*[part("f", b"1", None) for _ in range(1001)], part("image", PHOTO))
    error_of(post(http, many), 413, "too_large")
    huge_field = multipart(part("note", b"x" * 600_000, None), part("image", PHOTO))
    error_of(post(http, huge_field), 413, "too_large")
    assert client.classified == 0


def test_a_chunked_multipart_upload_is_read(api):
    http, _, client = api()
    data = multipart(part("image", PHOTO, "chunked.jpg"))
    # the Content-Type goes in as an environ key: the test client would otherwise build its own (empty) form
    response = http.post("/api/v1/classify", environ_overrides={
        "wsgi.input": _Chunks(data), "CONTENT_LENGTH": "", "wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}"})
    assert response.get_json()["image"] == "chunked.jpg"
    assert client.classified == 1


class _Chunks(io.RawIOBase):
    """A body stream without a length, read in small pieces (as a server hands a chunked upload on)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        piece = self.data[self.offset:self.offset + min(len(buffer), 4096)]
        self.offset += len(piece)
        buffer[:len(piece)] = piece
        return len(piece)
