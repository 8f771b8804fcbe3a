"""Find one file field in a multipart/form-data body with a few ``bytes.find`` calls; werkzeug referees odd bodies.

Why: werkzeug's form parser compiles two regular expressions for every request
(they embed the boundary, which clients make new for every request), and for a
30 KB photo that was about two thirds of the web tier's CPU per request. The API
needs one field (``image``), so :func:`find_file_part` reads a body that is
already in memory once and copies out only that field's bytes.

It handles the plain shape every HTTP library and browser sends: CRLF line
breaks, every occurrence of ``--boundary`` a real delimiter (at the start of
the body or after CRLF, followed by CRLF, optional spaces or tabs before it, or
by ``--`` for the last one), a close delimiter, and parts whose headers
(unfolded, UTF-8) carry a Content-Disposition with a ``name``. Anything else
raises :class:`UnusualBody`, and the caller hands the same bytes to werkzeug's
parser, so an odd body (bare LF line breaks, folded headers, a truncated body,
too many parts, a form field over the memory limit ...) gets exactly the answer
it got before. Field names, filenames (quoting, ``filename*``) and which of
several same-named files wins (the first) follow werkzeug too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.http import parse_options_header

CRLF = b"\r\n"
PADDING = b" \t"
#: RFC 2046's boundary: 1 to 70 of these characters, not ending in a space (others go to werkzeug)
BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


class UnusualBody(ValueError):
    """The body is not the plain shape :func:`find_file_part` reads: let werkzeug's parser decide."""


@dataclass(frozen=True)
class FilePart:
    """One file field: its field name, the filename the client gave (may be empty) and its bytes."""

    field: str
    filename: str
    data: bytes


@dataclass(frozen=True)
class FileFields:
    """What a body holds: the first file part named as asked (or None), and every file field's name in order."""

    wanted: FilePart | None
    names: tuple[str, ...]


def find_file_part(body: bytes, boundary: str, field: str, *, max_parts: int | None,
                   max_memory: int | None) -> FileFields:
    """The first file part of ``body`` whose field name is ``field``; UnusualBody when werkzeug should parse it.

    ``max_parts`` and ``max_memory`` are the request's form limits (werkzeug's ``max_form_parts`` and
    ``max_form_memory_size``): a body near them is left to werkzeug, which refuses it (413) as before.
    """
    delimiter = _delimiter(boundary)
    # werkzeug refuses unparsed text (preamble, headers, a form field, epilogue) over max_memory; stay well inside
    small = (max_memory // 2) if max_memory is not None else None
    first = body.find(delimiter[2:])  # "--boundary": at the very start, or after CRLF ending a preamble
    if first < 0:
        raise UnusualBody("no delimiter")
    if first > 0 and (body[first - 2:first] != CRLF or _too_big(first, small)):
        raise UnusualBody("preamble")
    position = first + len(delimiter) - 2
    wanted: FilePart | None = None
    names: list[str] = []
    seen_names: set[str] = set()
    parts = 0
    while True:
        position, closing = _after_delimiter(body, position)
        if closing:
            if _too_big(len(body) - position, small) or body.find(delimiter[2:], position) >= 0:
                raise UnusualBody("epilogue")
            return FileFields(wanted, tuple(names))
        parts += 1
        if max_parts is not None and parts > max_parts // 2:
            raise UnusualBody("many parts")
        headers_end = body.find(b"\r\n\r\n", position)
        if headers_end < 0 or _too_big(headers_end - position, small):
            raise UnusualBody("part headers")
        name, filename = _disposition(body[position:headers_end])
        data_start = headers_end + 4
        hit = body.find(delimiter[2:], data_start)  # one pass over the part: the next "--boundary" must end it
        if hit < 0:
            raise UnusualBody("no delimiter after a part")
        data_end = hit - 2
        if data_end < data_start or body[data_end:hit] != CRLF:
            raise UnusualBody("boundary inside a part")  # not after CRLF: werkzeug reads other line breaks too
        if filename is None:
            if _too_big(data_end - data_start, small):
                raise UnusualBody("large form field")
        else:
            if name not in seen_names:
                seen_names.add(name)
                names.append(name)
            if wanted is None and name == field:
                wanted = FilePart(name, filename, body[data_start:data_end])
        position = data_end + len(delimiter)


def _delimiter(boundary: str) -> bytes:
    if not BOUNDARY_RE.fullmatch(boundary):
        raise UnusualBody("boundary")
    return CRLF + b"--" + boundary.encode("ascii")


def _after_delimiter(body: bytes, position: int) -> tuple[int, bool]:
    """Where the part after a delimiter starts, and whether it was the close delimiter."""
    if body.startswith(b"--", position):
        return position + 2, True
    end = body.find(CRLF, position)
    if end < 0 or body[position:end].strip(PADDING):
        raise UnusualBody("delimiter line")  # "--boundary" followed by something else: werkzeug reads it as data
    return end + 2, False


def _disposition(block: bytes) -> tuple[str, str | None]:
    """(field name, filename or None for a form field) from a part's header block, as werkzeug reads it."""
    disposition = None
    for line in block.split(CRLF):
        if b"\r" in line or b"\n" in line or line[:1].isspace():  # folded or odd lines: werkzeug unfolds them
            raise UnusualBody("header line")
        try:
            key, _, value = line.decode("utf-8").partition(":")
        except UnicodeDecodeError:
            raise UnusualBody("header encoding") from None
        if disposition is None and key.strip(" \t").lower() == "content-disposition":
            disposition = value.strip(" \t")
    if disposition is None:
        raise UnusualBody("no Content-Disposition")
    _, options = parse_options_header(disposition)
    name = options.get("name")
    if name is None:
        raise UnusualBody("no field name")
    return name, options.get("filename")


def _too_big(size: int, limit: int | None) -> bool:
    return limit is not None and size > limit
