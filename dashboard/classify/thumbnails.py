"""The preview on each result card: a small JPEG data URL made from the upload in the web process.

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

log = logging.getLogger(__name__)

THUMBNAIL_PX = 192
#: largest image (after JPEG draft scaling) the web process decodes for a thumbnail: 4096 x 4096
THUMBNAIL_MAX_PIXELS = 4096 * 4096
#: formats the web process decodes at all (the README's list); anything else gets no thumbnail
THUMBNAIL_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


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
