"""Classifying images for the UI and the API: plain helpers over ``BackendClient`` (no Dash in here).

The flow for a drop of files: decode each browser data URL, refuse what the
web tier can already refuse (empty, over the size limit, too many files),
send the rest to the backend concurrently (a thread pool over
``client.classify``, so the backend can batch them), record every outcome in
the history and keep each accepted image on disk by its sha256 so the
monolith can be run on it later from any worker process.

Names are untrusted: every :class:`Upload` cleans its own (``sanitize.clean_name``:
no control characters, at most 255 characters, never empty), whether it came
from a drop, an example or the API. Thumbnails are decoded here, in the web
process, so :func:`make_thumbnail` refuses images over
:data:`THUMBNAIL_MAX_PIXELS` before decoding and reduces as early as it can.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Sequence

from model_backend.errors import BackendError, BadImage, BadRequest, TooLarge

from .history import SERVICE, HistoryStore, error_record, service_record
from .sanitize import clean_name

log = logging.getLogger(__name__)

THUMBNAIL_PX = 192
#: largest image (after JPEG draft scaling) the web process decodes for a thumbnail: 4096 x 4096
THUMBNAIL_MAX_PIXELS = 4096 * 4096
#: formats the web process decodes at all (the README's list); anything else gets no thumbnail
THUMBNAIL_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
KEEP_UPLOADS = 200
MAX_PARALLEL = 16


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
    """What happened to one image: a backend reply, or an error code and a message a person can read."""

    name: str
    sha256: str | None
    ok: bool
    reply: dict = field(default_factory=dict)
    latency_ms: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    http_status: int = 200
    thumbnail: str | None = None
    source: str = "upload"

    @property
    def predictions(self) -> list[dict]:
        return list(self.reply.get("predictions") or [])

    @property
    def timings(self) -> dict:
        return dict(self.reply.get("timings_ms") or {})

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
                         source: str = "upload") -> tuple[list[Upload], list[Outcome]]:
    """Turn dcc.Upload's lists into uploads, plus refusals for what could not even be read or was one too many."""
    contents = list(contents or [])
    filenames = list(filenames or [])
    uploads: list[Upload] = []
    refused: list[Outcome] = []
    for position, data_url in enumerate(contents):
        name = clean_name(filenames[position] if position < len(filenames) else None, fallback=f"image-{position + 1}")
        if position >= max_files:
            refused.append(Outcome.failed(name, None, BadRequest(
                f"Not sent: at most {max_files} images are classified per drop; drop the rest again."), source=source))
            continue
        try:
            uploads.append(Upload(name, decode_data_url(data_url), source))
        except BackendError as error:
            refused.append(Outcome.failed(name, None, error, source=source))
    return uploads, refused


def check_upload(upload: Upload, max_bytes: int) -> BackendError | None:
    """What the web tier refuses before bothering the backend: empty files and files over the size limit."""
    if not upload.data:
        return BadImage(f"{upload.name} is empty (0 bytes), not an image.")
    if len(upload.data) > max_bytes:
        return TooLarge(f"{upload.name} is {format_bytes(len(upload.data))}; the limit is {format_bytes(max_bytes)} per image.")
    return None


def classify_one(client, upload: Upload, top_k: int, max_bytes: int) -> Outcome:
    """Classify one image, measuring the round trip; errors come back as a failed Outcome, never raised."""
    sha = upload.sha256
    refusal = check_upload(upload, max_bytes)
    if refusal is not None:
        return Outcome.failed(upload.name, sha, refusal, source=upload.source)
    started = time.perf_counter()
    try:
        reply = client.classify(upload.data, top_k=top_k)
    except BackendError as error:
        return Outcome.failed(upload.name, sha, error, (time.perf_counter() - started) * 1000, upload.source)
    latency_ms = (time.perf_counter() - started) * 1000
    return Outcome(upload.name, sha, True, reply=dict(reply), latency_ms=latency_ms, source=upload.source)


def classify_many(client, uploads: Sequence[Upload], *, top_k: int, max_bytes: int, store: HistoryStore | None = None,
                  uploads_dir: Path | None = None, thumbnails: bool = True) -> list[Outcome]:
    """Classify several images at once (concurrently, so the backend can batch them); record and keep each one."""
    if not uploads:
        return []
    workers = min(len(uploads), MAX_PARALLEL)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="classify") as pool:
        outcomes = list(pool.map(lambda u: classify_one(client, u, top_k, max_bytes), uploads))
    for upload, outcome in zip(uploads, outcomes, strict=True):
        if outcome.ok:
            if thumbnails:
                outcome.thumbnail = make_thumbnail(upload.data)
            if uploads_dir is not None:
                keep_upload(uploads_dir, upload)
    if store is not None:
        record_outcomes(store, outcomes)
    return outcomes


def record_outcomes(store: HistoryStore, outcomes: Sequence[Outcome]) -> None:
    """Write outcomes to the history; a failing database never loses the user's results."""
    for outcome in outcomes:
        try:
            store.add(outcome_record(outcome))
        except Exception:  # noqa: BLE001 - history is best effort, the answer still goes to the user
            log.exception("Could not record %s in the history at %s", outcome.name, store.path)


def outcome_record(outcome: Outcome) -> dict:
    image = outcome.name or (outcome.sha256 or "")[:12]
    if outcome.ok:
        return service_record(image, outcome.sha256, outcome.reply, outcome.latency_ms or 0.0, outcome.source)
    return error_record(SERVICE, image, outcome.sha256, outcome.error_code or "internal", outcome.error_message or "",
                        outcome.latency_ms, outcome.source)


def keep_upload(uploads_dir: Path, upload: Upload) -> Path:
    """Store the image by content hash (idempotent) and drop the oldest beyond KEEP_UPLOADS."""
    uploads_dir.mkdir(parents=True, exist_ok=True)
    path = uploads_dir / f"{upload.sha256}.img"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{time.monotonic_ns()}")
        tmp.write_bytes(upload.data)
        tmp.replace(path)
        _prune(uploads_dir)
    else:
        path.touch()
    return path


def kept_upload(uploads_dir: Path, sha256: str) -> Path | None:
    """The stored image for a sha256 (validated: hex only), or None."""
    if not sha256 or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        return None
    path = uploads_dir / f"{sha256}.img"
    return path if path.is_file() else None


def _prune(uploads_dir: Path) -> None:
    files = sorted(uploads_dir.glob("*.img"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_UPLOADS:]:
        old.unlink(missing_ok=True)


def make_thumbnail(data: bytes, size: int = THUMBNAIL_PX) -> str | None:
    """A small JPEG data URL for the result card (the backend already accepted the image); None if Pillow can't."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data), formats=THUMBNAIL_FORMATS) as image:
            image.draft("RGB", (size * 2, size * 2))  # JPEG: decode at 1/2 .. 1/8 scale
            width, height = image.size
            if width * height > THUMBNAIL_MAX_PIXELS:
                log.info("No thumbnail for a %dx%d image (over %d pixels)", width, height, THUMBNAIL_MAX_PIXELS)
                return None
            if image.mode.startswith("I;16"):
                image = image.convert("I")  # resizing cannot take 16-bit modes; bounded by the pixel cap above
            image.thumbnail((size, size))  # loads, then reduces in place (Image.reduce, then a resample)
            image = _to_8bit(ImageOps.exif_transpose(image)).convert("RGB")
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=80)
    except Exception:  # noqa: BLE001 - a missing thumbnail must not hide a result
        log.debug("No thumbnail for an image the backend accepted", exc_info=True)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _to_8bit(image):
    """32-bit integer and float images stretched to 8-bit grey (Pillow's convert would clip them to white)."""
    if image.mode not in ("I", "F"):
        return image
    low, high = image.getextrema()
    scale = 255.0 / (high - low) if high > low else 1.0
    return image.point(lambda v: (v - low) * scale).convert("L")


def format_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"
