"""The classify feature's domain types: an :class:`Upload` (an image in) and its :class:`Outcome` (what happened).

Names are untrusted: every :class:`Upload` cleans its own (``sanitize.clean_name``:
no control characters, at most 255 characters, never empty), whether it came
from a drop, an example or the API. The web tier refuses what it can without
the backend, each file for its own first reason: a data URL it cannot read,
an empty file, a file over the size limit, a file that is not an image format
the dashboard reads, and only then one file too many.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

from model_backend.errors import BackendError, BadImage, BadRequest, TooLarge
from model_backend.protocol import ClassifyReply

from ..common.formatting import format_bytes
from ..common.sanitize import clean_name


@dataclass(frozen=True)
class Upload:
    """One image to classify: its display name, raw bytes and where it came from (upload, example, api)."""

    name: str
    data: bytes
    source: str = "upload"

    def __post_init__(self) -> None:
        # Every way in (drop, example, API ?name= / X-Image-Name / multipart filename) passes here.
        object.__setattr__(self, "name", clean_name(self.name, self.sha256 if not self.name else None))

    @cached_property
    def sha256(self) -> str:
        """Hashed once: the result, the history row and the kept file all use it."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Outcome:
    """What happened to one image: the backend's typed reply, or an error code and a message a person can read."""

    name: str
    sha256: str | None
    ok: bool
    reply: ClassifyReply | None = None
    latency_ms: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    http_status: int = 200
    thumbnail: str | None = None
    source: str = "upload"

    @property
    def predictions(self) -> list[dict]:
        """The top-k as plain dicts (index, label, p), most probable first; empty without a reply."""
        return [prediction.to_wire() for prediction in self.reply.predictions] if self.reply else []

    @classmethod
    def failed(cls, upload_name: str, sha256: str | None, error: BackendError, latency_ms: float | None = None,
               source: str = "upload") -> "Outcome":
        return cls(upload_name, sha256, False, latency_ms=latency_ms, error_code=error.code,
                   error_message=error.message, http_status=error.http_status, source=source)


def decode_data_url(contents: str) -> bytes:
    """The bytes inside a browser data URL (``data:image/png;base64,....``), as dcc.Upload delivers them."""
    if not isinstance(contents, str) or "," not in contents:
        raise BadRequest("Expected a base64 data URL from the upload. Received: something else")
    header, _, payload = contents.partition(",")
    if not header.endswith(";base64"):
        raise BadRequest("Expected a base64 data URL from the upload. Received: a URL without ;base64")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadImage("The upload could not be read: its base64 data is corrupt.") from None


def uploads_from_browser(contents: Sequence[str] | None, filenames: Sequence[str] | None, max_files: int,
                         source: str = "upload", max_bytes: int | None = None) -> tuple[list[Upload], list[Outcome]]:
    """Turn dcc.Upload's lists into uploads, plus a refusal for each file the web tier will not send, with its own
    first reason: unreadable, empty, too large (``max_bytes``), not an image format the dashboard reads, and only
    then one image too many (the first ``max_files`` files that pass go out; the rest wait for another drop)."""
    contents = list(contents or [])
    filenames = list(filenames or [])
    uploads: list[Upload] = []
    refused: list[Outcome] = []
    for position, data_url in enumerate(contents):
        name = clean_name(filenames[position] if position < len(filenames) else None, fallback=f"image-{position + 1}")
        try:
            upload = Upload(name, decode_data_url(data_url), source)
            error = (check_upload(upload, max_bytes) if max_bytes is not None else None) or check_format(upload)
        except BackendError as exc:
            upload, error = None, exc
        if error is None and len(uploads) >= max_files:
            error = BadRequest(too_many_text(max_files, position + 1))
        if error is not None:
            refused.append(Outcome.failed(name, upload.sha256 if upload is not None and upload.data else None, error,
                                          source=source))
        else:
            uploads.append(upload)
    return uploads, refused


def too_many_text(max_files: int, position: int) -> str:
    """Why the file at ``position`` (1-based) of a drop was not sent: said once, with what to do."""
    return (f"only {max_files} images are sent per drop and this was file {position}; "
            f"drop it again in a smaller batch.")


#: the first bytes of each format the README lists (what Pillow itself checks before it decodes)
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
              b"II+\x00", b"MM\x00+")


def check_format(upload: Upload) -> BackendError | None:
    """Refuse a file whose first bytes are none of JPEG, PNG, WebP, GIF, BMP or TIFF (the backend would too)."""
    head = upload.data[:16]
    if head.startswith(SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return None
    return BadImage(f"{upload.name} is not a JPEG, PNG, WebP, GIF, BMP or TIFF image.")


def check_upload(upload: Upload, max_bytes: int) -> BackendError | None:
    """What the web tier refuses before bothering the backend: empty files and files over the size limit."""
    if not upload.data:
        return BadImage(f"{upload.name} is empty (0 bytes), not an image.")
    if len(upload.data) > max_bytes:
        return TooLarge(f"{upload.name} is {format_bytes(len(upload.data))}; the limit is {format_bytes(max_bytes)} per image.")
    return None
