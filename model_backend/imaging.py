"""Untrusted image bytes -> an RGB uint8 array at the model's input size (Pillow + numpy, no TensorFlow).

Handles every mode Pillow reads (RGB, RGBA, LA, L, P with transparency,
CMYK, 1-bit, 16-bit and 32-bit integer and float greyscale), applies the EXIF
orientation, composites transparency onto white, and resizes straight to the
input size with a bilinear filter. JPEGs are decoded in draft mode (the codec
scales by 1/2, 1/4 or 1/8 while decoding), so a 12-megapixel photo costs a few
milliseconds, not a hundred.

Every failure is a typed error: :class:`~model_backend.errors.BadImage` for
empty, truncated or unknown data, :class:`~model_backend.errors.TooLarge` for
too many bytes or pixels (decompression bombs are refused before decoding).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import BadImage, TooLarge

ImageFile.LOAD_TRUNCATED_IMAGES = False  # never accept truncated data silently

_WHITE = (255, 255, 255)


def decode_image(
    data: bytes,
    size: tuple[int, int],
    *,
    max_bytes: int = 20 * 1024 * 1024,
    max_pixels: int = 64_000_000,
) -> np.ndarray:
    """Decode ``data`` and return an RGB ``uint8`` array of shape (height, width, 3) for ``size=(height, width)``."""
    if not data:
        raise BadImage("The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise TooLarge(f"The image is {_mib(len(data))}; the limit is {_mib(max_bytes)}.")
    height, width = size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            pixels = image.width * image.height
            if pixels > max_pixels:
                raise TooLarge(
                    f"The image is {image.width}x{image.height} pixels ({pixels / 1e6:.1f} MP); "
                    f"the limit is {max_pixels / 1e6:.1f} MP."
                )
            if image.format == "JPEG":
                # Let the JPEG decoder downscale while decoding; keep at least the target size.
                image.draft("RGB", (width, height))
            image = ImageOps.exif_transpose(image)
            image = to_rgb(image)
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None)
            array = np.asarray(image, dtype=np.uint8)
    except (TooLarge, BadImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(
            f"The image has too many pixels to decode safely (decompression bomb protection; the limit is {max_pixels / 1e6:.1f} MP)."
        ) from None
    except UnidentifiedImageError:
        raise BadImage("The data is not an image format this server can read (expected JPEG, PNG, GIF, BMP, TIFF, WebP...).") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise BadImage(f"The image could not be decoded: {exc}.") from None
    if array.shape != (height, width, 3):
        raise BadImage(f"Expected an RGB image after conversion. Received: array of shape {array.shape}.")
    return array


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency onto white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_depth_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "L" and "transparency" in image.info:
        return to_rgb(image.convert("RGBA"))
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit / 32-bit greyscale -> 8-bit RGB, scaled by the type's range (not clipped)."""
    array = np.asarray(image)
    if image.mode == "F":
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
    elif image.mode == "I" and array.max(initial=0) <= 255:
        scaled = array  # 8-bit data stored in a 32-bit container
    elif image.mode == "I" and array.max(initial=0) > 65535:
        scaled = array.astype(np.float64) / float(2**32 - 1) * 255.0
    else:
        scaled = array.astype(np.float64) / 65535.0 * 255.0
    grey = np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"
