"""The preview on each result card: a small JPEG made from the upload in the web process.

The page loads it from ``/thumbnails/<sha256>.jpg`` (:func:`install_thumbnail_route`), made from the kept
upload (``common/kept_uploads.py``), so the browser's session store keeps no image (``session_results.py``).

The web process decodes only what it must, and only once per upload: Pillow
reads the header (size, mode) without decoding, :func:`make_thumbnail`
refuses images over :data:`THUMBNAIL_MAX_PIXELS` before decoding, asks JPEG
for a reduced decode (``draft``: 1/2 .. 1/8 scale), and ``thumbnail`` then
decodes once and reduces in place. (The backend decodes the same bytes in its
own process to classify them; the web tier never decodes for that.)
"""

from __future__ import annotations

import base64
import io
import logging
from functools import lru_cache
from pathlib import Path

from ..common.kept_uploads import KeptUploads, as_kept_uploads

log = logging.getLogger(__name__)

THUMBNAIL_PX = 192
#: largest image (after JPEG draft scaling) the web process decodes for a thumbnail: 4096 x 4096
THUMBNAIL_MAX_PIXELS = 4096 * 4096
#: formats the web process decodes at all (the README's list); anything else gets no thumbnail
THUMBNAIL_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
#: served thumbnails of kept uploads (by sha256), and how many a process keeps made (about 10 kB each)
THUMBNAIL_ROUTE = "/thumbnails"
THUMBNAIL_CACHE = 256


def make_thumbnail(data: bytes, size: int = THUMBNAIL_PX) -> str | None:
    """A small JPEG data URL for the result card (the backend already accepted the image); None if Pillow can't."""
    jpeg = thumbnail_jpeg(data, size)
    return None if jpeg is None else "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def thumbnail_url(sha256: str) -> str:
    """Where the page loads the thumbnail of a kept upload (served by :func:`install_thumbnail_route`)."""
    return f"{THUMBNAIL_ROUTE}/{sha256}.jpg"


def install_thumbnail_route(server, kept: KeptUploads | Path) -> None:
    """``GET /thumbnails/<sha256>.jpg``: the thumbnail of a kept upload (404 if none is kept, or the name is not one).

    ``kept`` is where the uploads are kept (``common/kept_uploads.py``; a folder means files in it).
    Content-addressed, so the browser may cache it for a day; made once per process per image (an LRU cache,
    by sha256: the same name is always the same image; a pruned image is 404 again).
    The route sits behind the guard like every other path (auth, allowed hosts).
    """
    from flask import Response, abort

    kept = as_kept_uploads(kept)

    @lru_cache(maxsize=THUMBNAIL_CACHE)
    def made(sha256: str) -> bytes | None:
        data = kept.read(sha256)
        if data is None:
            raise LookupError(sha256)  # not cached: the image may be kept again
        return thumbnail_jpeg(data)

    def thumbnail(sha256: str):
        if not kept.contains(sha256):  # validates the name; a pruned image is 404 even while its thumbnail is cached
            abort(404)
        try:
            jpeg = made(sha256)
        except LookupError:  # pruned between the look-up and the read
            abort(404)
        if jpeg is None:
            abort(404)
        return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})

    server.add_url_rule(f"{THUMBNAIL_ROUTE}/<sha256>.jpg", "result_thumbnail", thumbnail, methods=["GET"])


def thumbnail_jpeg(data: bytes, size: int = THUMBNAIL_PX) -> bytes | None:
    """A small JPEG of the image (one bounded decode); None if Pillow can't or the image is too large to decode."""
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
    return out.getvalue()


def _to_8bit(image):
    """32-bit integer and float images stretched to 8-bit grey (Pillow's convert would clip them to white)."""
    if image.mode not in ("I", "F"):
        return image
    low, high = image.getextrema()
    scale = 255.0 / (high - low) if high > low else 1.0
    return image.point(lambda v: (v - low) * scale).convert("L")
