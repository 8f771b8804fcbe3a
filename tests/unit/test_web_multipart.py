"""dashboard/api/multipart.py: the fast multipart reader finds what werkzeug's form parser finds, or steps aside.

Every body here is also parsed by werkzeug's FormDataParser with the limits Flask gives a request (the parser the
API used before, and still uses for any body the fast reader calls unusual). Whenever the fast reader answers, its
answer (the first ``image`` file's filename and bytes, and the file field names) must be werkzeug's.
"""

from __future__ import annotations

import io
import random

import pytest
from werkzeug.formparser import FormDataParser

from dashboard.api.multipart import FileFields, UnusualBody, find_file_part

BOUNDARY = "a1b2c3d4e5f6"
PHOTO = bytes(range(256)) * 40 + b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n-- \r\n--"  # near-misses of the delimiter
MAX_PARTS = 1000  # Flask's MAX_FORM_PARTS
MAX_MEMORY = 500_000  # Flask's MAX_FORM_MEMORY_SIZE


def part(name: str, data: bytes, filename: str | None = None, content_type: str = "image/jpeg",
         disposition: str | None = None) -> bytes:
    if disposition is None:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"Content-Disposition: {disposition}\r\n" + (f"Content-Type: {content_type}\r\n" if filename is not None else "")
    return head.encode() + b"\r\n" + data


def body(*parts: bytes, boundary: str = BOUNDARY, preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    delimiter = b"--" + boundary.encode()
    out = preamble + (b"\r\n" if preamble else b"")
    for item in parts:
        out += delimiter + b"\r\n" + item + b"\r\n"
    return out + delimiter + b"--" + epilogue


def werkzeug_reading(data: bytes, boundary: str = BOUNDARY) -> tuple[str, bytes | None, tuple[str, ...]]:
    """What the API saw before: werkzeug's parse (silent, as a Request parses) -> (filename, bytes, file names)."""
    parser = FormDataParser(max_form_memory_size=MAX_MEMORY, max_form_parts=MAX_PARTS, silent=True)
    _, _, files = parser.parse(io.BytesIO(data), "multipart/form-data", len(data), {"boundary": boundary})
    image = files.get("image")
    if image is None:
        return "", None, tuple(files)
    return image.filename or "", image.read(), tuple(files)


def fast_reading(data: bytes, boundary: str = BOUNDARY) -> tuple[str, bytes | None, tuple[str, ...]]:
    found = find_file_part(data, boundary, "image", max_parts=MAX_PARTS, max_memory=MAX_MEMORY)
    if found.wanted is None:
        return "", None, found.names
    return found.wanted.filename, found.wanted.data, found.names


def assert_same_or_unusual(data: bytes, boundary: str = BOUNDARY) -> bool:
    """True when the fast reader answered (and agreed with werkzeug), False when it stepped aside."""
    try:
        fast = fast_reading(data, boundary)
    except UnusualBody:
        return False
    assert fast == werkzeug_reading(data, boundary)
    return True


PLAIN_BODIES = {
    "one image": body(part("image", PHOTO, "chelsea.jpg")),
    "http.client style, no final CRLF": body(part("image", PHOTO, "chelsea.jpg"), epilogue=b""),
    "a form field first": body(part("note", b"hello"), part("image", PHOTO, "a.png")),
    "two images: the first wins": body(part("image", b"first", "1.jpg"), part("image", b"second", "2.jpg")),
    "other files, no image": body(part("file", PHOTO, "a.jpg"), part("photo", b"x", "b.jpg"), part("file", b"y", "c.jpg")),
    "image is a form field, not a file": body(part("image", b"just text")),
    "empty filename": body(part("image", PHOTO, "")),
    "empty image": body(part("image", b"", "empty.jpg")),
    "no parts at all": body(),
    "a preamble and an epilogue": body(part("image", PHOTO, "p.jpg"), preamble=b"This is a preamble.", epilogue=b"\r\nbye\r\n"),
    "padding after the delimiter": body(part("image", PHOTO, "p.jpg")).replace(
        b"--" + BOUNDARY.encode() + b"\r\n", b"--" + BOUNDARY.encode() + b" \t\r\n", 1),
    "utf-8 filename*": body(part("image", PHOTO, disposition="form-data; name=\"image\"; filename*=UTF-8''caf%C3%A9.jpg")),
    "quoted filename with an escaped quote": body(part("image", PHOTO, disposition='form-data; name="image"; filename="a \\"b\\".jpg"')),
    "unquoted parameters": body(part("image", PHOTO, disposition="form-data; name=image; filename=x.jpg")),
    "path in the filename": body(part("image", PHOTO, "../../etc/passwd")),
    "header names in another case": body(b"content-DISPOSITION: form-data; name=\"image\"; filename=\"c.jpg\"\r\n\r\n" + PHOTO),
    "image bytes with CRLFs and dashes": body(part("image", b"\r\n\r\n--\r\n--" + BOUNDARY[:-1].encode() + b"x", "d.jpg")),
}


@pytest.mark.parametrize("case", sorted(PLAIN_BODIES))
def test_plain_bodies_are_read_fast_and_as_werkzeug_reads_them(case):
    assert assert_same_or_unusual(PLAIN_BODIES[case]), f"{case}: the fast reader stepped aside"


def test_the_image_is_found_with_its_exact_bytes_and_name():
    data = body(part("note", b"hi"), part("image", PHOTO, "chelsea.jpg"), part("image", b"later", "2.jpg"), part("x", b"1", "x.bin"))
    found = find_file_part(data, BOUNDARY, "image", max_parts=MAX_PARTS, max_memory=MAX_MEMORY)
    assert isinstance(found, FileFields)
    assert found.wanted.filename == "chelsea.jpg" and found.wanted.data == PHOTO and found.wanted.field == "image"
    assert found.names == ("image", "x")


UNUSUAL_BODIES = {
    "bare LF line breaks": body(part("image", PHOTO, "a.jpg")).replace(b"\r\n", b"\n"),
    "truncated: no close delimiter": body(part("image", PHOTO, "a.jpg"))[:-(len(BOUNDARY) + 6)],
    "truncated inside the headers": body(part("image", PHOTO, "a.jpg"))[:len(BOUNDARY) + 30],
    "no delimiter at all": b"just some bytes",
    "folded Content-Disposition": body(b'Content-Disposition: form-data; name="image";\r\n filename="f.jpg"\r\n\r\n' + PHOTO),
    "no Content-Disposition": body(b"Content-Type: image/jpeg\r\n\r\n" + PHOTO),
    "no field name": body(part("image", PHOTO, disposition='form-data; filename="a.jpg"')),
    "headers that are not UTF-8": body(b'Content-Disposition: form-data; name="image"; filename="\xff.jpg"\r\n\r\n' + PHOTO),
    "boundary text inside a part after a bare LF": body(part("image", b"abc\n--" + BOUNDARY.encode() + b"\r\nxyz", "a.jpg")),
    "the boundary inside the image (not allowed)": body(part("image", b"ab\r\n--" + BOUNDARY.encode() + b"x", "d.jpg")),
    "delimiter followed by junk": body(part("image", PHOTO, "a.jpg")).replace(b"--" + BOUNDARY.encode() + b"\r\n",
                                                                              b"--" + BOUNDARY.encode() + b"junk\r\n", 1),
    "a form field over half the memory limit": body(part("note", b"x" * (MAX_MEMORY // 2 + 1)), part("image", PHOTO, "a.jpg")),
    "a form field over the memory limit": body(part("note", b"x" * (MAX_MEMORY + 1)), part("image", PHOTO, "a.jpg")),
    "more parts than half the limit": body(*[part("f", b"1") for _ in range(MAX_PARTS // 2 + 1)], part("image", PHOTO, "a.jpg")),
    "more parts than the limit": body(*[part("f", b"1") for _ in range(MAX_PARTS + 1)], part("image", PHOTO, "a.jpg")),
    "a huge preamble": body(part("image", PHOTO, "a.jpg"), preamble=b"p" * MAX_MEMORY),
}


@pytest.mark.parametrize("case", sorted(UNUSUAL_BODIES))
def test_unusual_bodies_are_left_to_werkzeug(case):
    with pytest.raises(UnusualBody):
        fast_reading(UNUSUAL_BODIES[case])


@pytest.mark.parametrize("boundary", ["", "x" * 71, "caf\u00e9", "a\r\nb", "ends with space "])
def test_boundaries_outside_rfc_2046_are_left_to_werkzeug(boundary):
    with pytest.raises(UnusualBody):
        find_file_part(b"--x--", boundary, "image", max_parts=MAX_PARTS, max_memory=MAX_MEMORY)


def test_every_rfc_2046_boundary_character_is_read():
    boundary = "0aZ'()+_,-./:=? x"
    assert assert_same_or_unusual(body(part("image", PHOTO, "a.jpg"), boundary=boundary), boundary)


def test_a_huge_image_part_is_read_whole():
    big = random.Random(7).randbytes(2_000_000)
    assert assert_same_or_unusual(body(part("image", big, "big.jpg")))


def test_random_bodies_agree_with_werkzeug():
    """Bodies assembled from the pieces that make parsers disagree: the fast reader is werkzeug's or steps aside."""
    rng = random.Random(20261130)
    pieces = [b"\r\n", b"\n", b"\r", b"--", b"--" + BOUNDARY.encode(), b"\r\n--" + BOUNDARY.encode(), b" ", b"\t",
              b"data", b"\xff\x00", b'Content-Disposition: form-data; name="image"; filename="r.jpg"',
              b'Content-Disposition: form-data; name="other"', b"Content-Type: image/png", b"\r\n\r\n"]
    answered = 0
    for _ in range(10000):
        parts = []
        for _ in range(rng.randint(0, 3)):
            if rng.random() < 0.6:
                parts.append(part(rng.choice(["image", "other"]), b"".join(rng.choices(pieces, k=rng.randint(0, 6))),
                                  rng.choice([None, "r.jpg", ""])))
            else:
                parts.append(b"".join(rng.choices(pieces, k=rng.randint(0, 8))))
        data = body(*parts, preamble=rng.choice([b"", b"pre"]), epilogue=rng.choice([b"", b"\r\n", b"--", b"\r\nend"]))
        if rng.random() < 0.2:  # cut it somewhere
            data = data[:rng.randint(0, len(data))]
        answered += assert_same_or_unusual(data)
    assert answered > 2000  # the fast path is the common path, not a rare one
