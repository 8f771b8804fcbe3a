"""Untrusted image bytes -> an RGB uint8 array at the model's input size (Pillow, libwebp, numpy; no TensorFlow).

Formats: only those the README lists are opened — JPEG (camera JPEGs that
Pillow reads as MPO included), PNG, WebP, GIF, BMP and TIFF. ``Image.open`` is
given that list, so no other plugin (EPS and its Ghostscript, PCX, SGI, TGA,
ICO, ...) ever sees the bytes; anything else is a :class:`BadImage` that names
the accepted formats. Animated GIF/WebP/APNG and multi-page TIFF: the first
frame only; the other frames are never decoded (not even counted).

Modes: RGB, RGBA, LA, L (with or without a transparent colour), P (with or
without transparency), PA, 1-bit, CMYK, YCbCr, HSV, LAB, RGBX, premultiplied
RGBa/La, 16-bit greyscale (I;16, I;16B, I;16L) and 32-bit integer (I) and float
(F) greyscale. Transparency is composited onto white; high-depth greyscale is
scaled by its range (16-bit: ``v * 255 // 65535``; float: min..max of the finite
values) with integer or float32 arithmetic on the reduced image, never a
float64 copy. The EXIF orientation is applied.

Bounded cost. The pixel limit is checked from the header, before any pixel
data is decoded. Then the image is reduced to the model's input size as early
as the format allows: JPEGs are decoded in draft mode (the codec scales by 1/2,
1/4 or 1/8 while decoding); every other format is decoded once at full size
and immediately box-reduced (``Image.reduce``) tile by tile, so that each mode
conversion (palette, CMYK, 16-bit, premultiplied alpha, ...) runs on one tile
of at most ``_TILE_SIDE``\\ :sup:`2` pixels or on the small reduced image. The
reduction keeps at least ``_REDUCING_GAP`` times the input size, so the final
bilinear resize gives the same result as a fair resample of the full image.

Peak memory for an image of ``P`` pixels is at most about ``MEMORY_BYTES_PER_PIXEL``
(= 6) times ``P`` bytes above the idle level: Pillow stores every accepted mode
in at most 4 bytes per pixel, the decoder's own buffers add at most a row or a
frame, and the tiles and the reduced image add a few MB. Two decoders need
more, and :func:`decode_bytes_per_pixel` says how much from the header: libwebp
through Pillow keeps two extra canvases of 4 bytes per pixel and hands over a
copy (about ``WEBP_BYTES_PER_PIXEL`` = 18 bytes per pixel; a still WebP, decoded
without Pillow, takes 6 to 8 when lossy and 8 to 14 when lossless, but the
limit assumes 18 for every WebP), and libjpeg keeps every DCT
coefficient of a progressive or multi-scan JPEG (2 bytes per coefficient: 4 to 9
bytes per pixel by chroma subsampling and components). Such images are refused
beyond ``max_pixels * MEMORY_BYTES_PER_PIXEL / decode_bytes_per_pixel`` pixels, so
that no accepted image costs more than ``MEMORY_BYTES_PER_PIXEL * max_pixels``
bytes (384 MB at the default 64 MP).
CPU time is linear in ``P`` as well (one decode pass, one reduction pass).
After a decode of more than ``_TRIM_BYTES`` the freed memory is handed back to
the operating system (glibc ``malloc_trim``): decode runs in a thread pool,
whose malloc arenas would otherwise keep the peak resident for ever.

Decoders (measured by ``python -m tools.bench.decoders``). Pillow opens every
image: the allow-list, the header checks, the EXIF orientation and the colour
mode always come from it, and it decodes the pixels of every format but one.
JPEG stays with Pillow: simplejpeg and PyTurboJPEG wrap the same libjpeg-turbo,
and at the same DCT scale they cost the same CPU time within 5 % (the time is
the entropy decoding of the whole file, whatever the scale). A progressive
JPEG that the draft decodes at 1/8 scale (any photo of 8 or more times the
input size) is first rewritten by :mod:`.jpeg_scans` without the AC scans that
scale never reads (the 1x1 inverse DCT reads only the DC coefficient), and
Pillow decodes the rewritten bytes: the same pixels, about a third of the CPU
time for a 12-MP photo. Anything the rewrite does not handle, and any rewritten
file that fails to decode, is decoded from the original bytes as before, so
what is accepted and what the errors say stay the same. A still WebP is
decoded by libwebp's simple API (``WebPDecodeRGBAInto``, from the very libwebp
Pillow's WebP plugin links, through ctypes, which releases the GIL) straight
into one RGBA buffer that Pillow then shares: Pillow's plugin always goes
through the animation decoder, with two canvases and a copy. Same pixels, about
0.7 times the CPU time and less than half the memory. An animated WebP, any
WebP libwebp refuses, and every WebP where that libwebp cannot be found go
through Pillow as before, so what is accepted and what the errors say stay the same.

Every failure is a typed error: :class:`~model_backend.errors.BadImage` for
empty, truncated, unknown or refused data, :class:`~model_backend.errors.TooLarge`
for too many bytes or pixels (decompression bombs are refused before decoding).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import math
import re
import struct

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import BadImage, TooLarge
from .jpeg_scans import eighth_scale_jpeg

ImageFile.LOAD_TRUNCATED_IMAGES = False  # never accept truncated data silently

#: The formats ``Image.open`` may try, in the order it tries them (the README's list).
OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
#: What ``image.format`` may say after opening: Pillow names multi-picture camera JPEGs "MPO".
ACCEPTED_FORMATS = frozenset(OPEN_FORMATS) | {"MPO"}
FORMATS_TEXT = "JPEG, PNG, WebP, GIF, BMP or TIFF"

#: Peak decode memory, in bytes per pixel of the image, that the pixel limit is meant to bound.
MEMORY_BYTES_PER_PIXEL = 6
WEBP_BYTES_PER_PIXEL = 18
#: Box-reduce to no less than this many times the input size before the final bilinear resize.
_REDUCING_GAP = 3.0
#: Side of the square tiles in which a full-size image is converted and reduced.
_TILE_SIDE = 1024
#: Decodes that allocate more than this hand their freed memory back to the OS afterwards.
_TRIM_BYTES = 16 * 1024 * 1024

_WHITE = (255, 255, 255)
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_STRAIGHT = {"RGBa": "RGBA", "La": "LA"}
_KNOWN_MODES = frozenset(
    ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV") + _HIGH_DEPTH
)
# EXIF orientation -> the transposition that undoes it (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Errors that Pillow's plugins and codecs raise for malformed data.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, struct.error,
                  ZeroDivisionError, OverflowError, RecursionError)


def decode_image(
    data: bytes,
    size: tuple[int, int],
    *,
    max_bytes: int = 20 * 1024 * 1024,
    max_pixels: int = 64_000_000,
) -> np.ndarray:
    """Decode ``data`` and return an RGB ``uint8`` array of shape (height, width, 3) for ``size=(height, width)``.

    Raises :class:`BadImage` or :class:`TooLarge`, nothing else, for any ``data``.
    """
    if not data:
        raise BadImage("The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise TooLarge(f"The image is {_mib(len(data))}; the limit is {_mib(max_bytes)}.")
    height, width = size
    decoded = [0]  # bytes of pixels the decoder allocated, set once the header is read
    error: Exception | None = None
    try:
        array = _open_and_decode(data, width, height, max_pixels, decoded)
    except (TooLarge, BadImage) as exc:
        error = exc
    except Image.DecompressionBombError:
        error = TooLarge(
            f"The image has too many pixels to decode safely (decompression bomb protection; "
            f"the limit is {max_pixels / 1e6:.1f} MP)."
        )
    except UnidentifiedImageError:
        error = BadImage(_format_message(None))
    except MemoryError:
        error = TooLarge("The image needs more memory to decode than this server has free.")
    except _DECODE_ERRORS as exc:
        error = BadImage(f"The image could not be decoded: {exc or type(exc).__name__}.")
    if error is not None:
        error.__traceback__ = None  # its frames held the full-size image
    if decoded[0] > _TRIM_BYTES:  # every full-size buffer is garbage now
        release_free_memory()
    if error is not None:
        raise error
    if array.shape != (height, width, 3):
        raise BadImage(f"Expected an RGB image after conversion. Received: array of shape {array.shape}.")
    return array


#: a progressive JPEG's decoder goes over the whole image once per scan; encoders write about 10 (libjpeg's default
#: script), so each further this-many scans count as one more pass in :func:`declared_pixels`
SCANS_PER_PASS = 16
#: the most scans a progressive JPEG may have: a small file of thousands of empty scans takes seconds of CPU to decode
#: (20,000 in 850 KB: 3 s). libjpeg-turbo leaves the limit to the application (TJPARAM_SCANLIMIT); 256, as NVIDIA's
#: nvImageCodec's default (NVIMGCODEC_MAX_JPEG_SCANS), is far above what any encoder writes
MAX_JPEG_SCANS = 256
_SOS_MARKER = re.compile(rb"\xff\xda")


def declared_pixels(data: bytes) -> int | None:
    """Pixels a decode works through as the header declares them (no pixels decoded); None when no accepted header.

    Width x height, times the passes a progressive JPEG's scans make (one per :data:`SCANS_PER_PASS` scans): a small
    file of thousands of empty scans declares a few MP yet takes seconds to decode. Its SOS markers are counted in
    the raw bytes (entropy-coded data never holds ``FF DA``; a marker-like run in metadata only counts more).
    """
    try:
        with Image.open(io.BytesIO(data), formats=list(OPEN_FORMATS)) as image:
            return image.width * image.height * (-(-_jpeg_scans(image, data) // SCANS_PER_PASS) or 1)
    except (UnidentifiedImageError, Image.DecompressionBombError, MemoryError, *_DECODE_ERRORS):
        return None


def _open_and_decode(data: bytes, width: int, height: int, max_pixels: int, decoded: list[int]) -> np.ndarray:
    """Open with the allow-list, check the header, decode; the full-size image dies with this frame."""
    with Image.open(io.BytesIO(data), formats=list(OPEN_FORMATS)) as image:
        if image.format not in ACCEPTED_FORMATS:  # belt and braces: a plugin answered for another format
            raise BadImage(_format_message(image.format))
        _check_pixels(image, max_pixels)
        scans = _jpeg_scans(image, data)
        if scans > MAX_JPEG_SCANS:
            raise BadImage(f"The image is a progressive JPEG of {scans} scans; at most {MAX_JPEG_SCANS} are accepted "
                           "(encoders write about 10; more only make it slow to decode). Save it again as a plain JPEG.")
        if image.mode not in _KNOWN_MODES:
            raise BadImage(f"Expected an image in a common colour mode. Received: mode {image.mode!r}.")
        decoded[0] = image.width * image.height * 4
        return _decode_opened(image, width, height, data)


def _jpeg_scans(image: Image.Image, data: bytes) -> int:
    """A progressive JPEG's scans, as its SOS markers counted in the raw bytes (entropy-coded data never holds
    ``FF DA``; a marker-like run in metadata only counts more); 1 for any other image."""
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        return len(_SOS_MARKER.findall(data))  # a compiled search: about a third of bytes.count's time here
    return 1


def _decode_opened(image: ImageFile.ImageFile, width: int, height: int, data: bytes) -> np.ndarray:
    """Orientation, draft, load, reduce, convert and resize an opened (header-only) image of the bytes ``data``."""
    if image.format in ("JPEG", "MPO"):
        orientation = _orientation(image)  # EXIF is in the header: known before the draft
        frame = _stored_frame(orientation, width, height)
        decoded = _decode_progressive_at_eighth_scale(image, data, frame)
        if decoded is None:
            image.draft("RGB", frame)  # the codec downscales; keeps >= target
            image.load()
            decoded = image
    else:
        decoded = _decode_still_webp(image, data) if image.format == "WEBP" and _libwebp is not None else None
        if decoded is None:
            image.load()  # first: a PNG's eXIf chunk may follow its pixels, and load errors must not pass as EXIF ones
            decoded = image
        orientation = _orientation(image)
    target = _stored_frame(orientation, width, height)
    small = reduce_image(decoded, target)
    del decoded  # the full-size pixels die here, not with the caller's frame
    if orientation in _ORIENTATION:
        small = small.transpose(_ORIENTATION[orientation])
    small = to_rgb(small, source_mode=image.mode)
    if small.size != (width, height):
        small = small.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(small, dtype=np.uint8)


def _decode_progressive_at_eighth_scale(
    image: ImageFile.ImageFile, data: bytes, frame: tuple[int, int]
) -> Image.Image | None:
    """A progressive JPEG that Pillow's draft decodes at 1/8 scale, decoded without the scans that scale ignores.

    The same pixels as ``image.draft`` + ``image.load`` (see :mod:`.jpeg_scans`), at
    a fraction of the CPU time. None (the caller decodes ``image`` as usual, so a bad
    file gets the usual error) for a baseline JPEG, an MPO, a scale other than 1/8,
    bytes :func:`eighth_scale_jpeg` does not rewrite, and anything that fails here.
    """
    if not _rewrite_progressive_jpeg or image.format != "JPEG" or not image.info.get("progressive"):
        return None
    if _jpeg_draft_scale(image.size, frame) != 8:
        return None
    rewritten = eighth_scale_jpeg(data)
    if rewritten is None:
        return None
    try:
        fast = Image.open(io.BytesIO(rewritten), formats=["JPEG"])
        if (fast.format, fast.mode, fast.size) != (image.format, image.mode, image.size):
            return None
        fast.draft("RGB", frame)
        if fast.size != (-(-image.width // 8), -(-image.height // 8)):
            return None
        fast.load()
    except (*_DECODE_ERRORS, MemoryError, Image.DecompressionBombError):
        return None
    return fast


def _jpeg_draft_scale(size: tuple[int, int], frame: tuple[int, int]) -> int:
    """The DCT scale denominator (8, 4, 2 or 1) that ``JpegImageFile.draft`` picks for ``frame`` (width, height)."""
    scale = min(size[0] // frame[0], size[1] // frame[1])
    return next((factor for factor in (8, 4, 2) if scale >= factor), 1)


def _decode_still_webp(image: ImageFile.ImageFile, data: bytes) -> Image.Image | None:
    """A still WebP's full-size pixels decoded by libwebp into one shared RGBA buffer; None to let Pillow decode.

    None for an animation (Pillow composes its first frame), when libwebp's size
    differs from Pillow's, and when libwebp refuses the data (Pillow then says
    why, in the usual words). The pixel limit was checked on Pillow's size.
    """
    if getattr(image, "is_animated", False) or image.mode not in ("RGB", "RGBA"):
        return None
    source = np.frombuffer(data, dtype=np.uint8)
    width, height = ctypes.c_int(), ctypes.c_int()
    if not _libwebp.info(source.ctypes.data, source.size, ctypes.byref(width), ctypes.byref(height)):
        return None
    if (width.value, height.value) != image.size:
        return None
    rgba = np.empty((height.value, width.value, 4), dtype=np.uint8)
    if not _libwebp.decode_rgba_into(source.ctypes.data, source.size, rgba.ctypes.data, rgba.nbytes, width.value * 4):
        return None
    mode = "RGBA" if image.mode == "RGBA" else "RGBX"  # Pillow's mode says whether the file has alpha
    return Image.frombuffer(mode, image.size, rgba, "raw", mode, 0, 1)  # shares rgba, no copy


class _LibWebP:
    """libwebp's simple decoding API (``decode.h``), from the copy Pillow's ``_webp`` extension links."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self.info = library.WebPGetInfo
        int_pointer = ctypes.POINTER(ctypes.c_int)
        self.info.argtypes = [ctypes.c_void_p, ctypes.c_size_t, int_pointer, int_pointer]
        self.info.restype = ctypes.c_int
        self.decode_rgba_into = library.WebPDecodeRGBAInto
        self.decode_rgba_into.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
        ]
        self.decode_rgba_into.restype = ctypes.c_void_p  # the output buffer, or NULL (None) on any failure


def _load_libwebp() -> _LibWebP | None:
    """Pillow's libwebp, found through its ``_webp`` extension (dlsym searches what it links); None if absent."""
    try:
        from PIL import _webp

        return _LibWebP(ctypes.CDLL(_webp.__file__))
    except (ImportError, OSError, AttributeError):
        return None


def _stored_frame(orientation: int, width: int, height: int) -> tuple[int, int]:
    """The target size in the image's stored frame: a quarter turn swaps width and height."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _check_pixels(image: Image.Image, max_pixels: int) -> None:
    """Refuse, from the header alone, an image with too many pixels for its format's decode cost."""
    pixels = image.width * image.height
    per_pixel = decode_bytes_per_pixel(image)
    limit = min(max_pixels, int(max_pixels * MEMORY_BYTES_PER_PIXEL / per_pixel))
    if pixels > limit:
        raise TooLarge(
            f"The image is {image.width}x{image.height} pixels ({pixels / 1e6:.1f} MP); the limit is "
            f"{limit / 1e6:.1f} MP{f' for a {image.format} like this one' if limit < max_pixels else ''}."
        )
    if pixels == 0:
        raise BadImage(f"Expected an image with pixels. Received: {image.width}x{image.height}.")


def decode_bytes_per_pixel(image: Image.Image) -> float:
    """The most memory, in bytes per pixel, that decoding this opened image may take (from its header).

    ``MEMORY_BYTES_PER_PIXEL`` for most; more for WebP (see the module docstring), and
    for JPEGs whose scans libjpeg must buffer: a progressive or multi-scan JPEG keeps
    every DCT coefficient (2 bytes) of every component at full size, whatever the draft
    scale, and a baseline JPEG does not say in its header whether it has several scans.
    """
    if image.format == "WEBP":
        return WEBP_BYTES_PER_PIXEL
    if image.format in ("JPEG", "MPO"):
        layers = [layer for layer in getattr(image, "layer", []) if len(layer) >= 3]
        h_max = max((int(layer[1]) for layer in layers), default=0)
        v_max = max((int(layer[2]) for layer in layers), default=0)
        if h_max > 0 and v_max > 0:
            coefficients = sum(int(layer[1]) * int(layer[2]) for layer in layers) / (h_max * v_max)
        else:
            coefficients = len(image.getbands())
        return max(float(MEMORY_BYTES_PER_PIXEL), 2 * coefficients + 1)
    return float(MEMORY_BYTES_PER_PIXEL)


def _orientation(image: Image.Image) -> int:
    try:
        tags = getattr(image, "tag_v2", None)  # TIFF: a base tag (getexif would re-read the IFD)
        value = tags.get(0x0112, 1) if tags is not None else image.getexif().get(0x0112, 1)
    except _DECODE_ERRORS:  # a corrupt EXIF block is ignored, not fatal
        return 1
    return value if isinstance(value, int) else 1


def reduce_image(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Box-reduce a loaded image to no less than ``_REDUCING_GAP`` x ``target`` (width, height), tile by tile.

    Returns an image in a mode that :func:`to_rgb` finishes on the small image: L, RGB,
    RGBA or LA (any transparency; averaged premultiplied), or F (any deep greyscale).
    An image that needs no reduction is returned as it is.
    """
    factor_x = max(1, int(image.width / target[0] / _REDUCING_GAP))
    factor_y = max(1, int(image.height / target[1] / _REDUCING_GAP))
    if factor_x == 1 and factor_y == 1:
        return image
    mode = _reducible_mode(image)
    out = Image.new(mode, (math.ceil(image.width / factor_x), math.ceil(image.height / factor_y)))
    step_x = factor_x * max(1, _TILE_SIDE // factor_x)
    step_y = factor_y * max(1, _TILE_SIDE // factor_y)
    for top in range(0, image.height, step_y):
        for left in range(0, image.width, step_x):
            box = (left, top, min(left + step_x, image.width), min(top + step_y, image.height))
            tile = image.crop(box)
            if tile.mode != mode:  # through the straight-alpha mode, which honours a transparent colour
                tile = tile.convert(_STRAIGHT.get(mode, mode)).convert(mode)
            out.paste(tile.reduce((factor_x, factor_y)), (left // factor_x, top // factor_y))
    return out.convert(_STRAIGHT[mode]) if mode in _STRAIGHT else out


def _reducible_mode(image: Image.Image) -> str:
    """The mode in which tiles of ``image`` are averaged: colours, premultiplied alpha, float for deep greys."""
    mode, transparent = image.mode, "transparency" in image.info
    if mode in _HIGH_DEPTH:
        return "F"  # Pillow's 32-bit integer reduce overflows; float32 does not, and 16-bit has no reduce
    if mode in ("RGBA", "PA", "RGBa") or (mode in ("P", "RGB") and transparent):
        return "RGBa"
    if mode in ("LA", "La") or (mode in ("L", "1") and transparent):
        return "La"
    if mode in ("L", "1"):
        return "L"
    return "RGB"  # RGB, RGBX, P, CMYK, YCbCr, HSV, LAB


def to_rgb(image: Image.Image, *, source_mode: str | None = None) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency onto white.

    Meant for small (reduced) images: high-depth modes go through numpy. ``source_mode``
    is the mode the image had before :func:`reduce_image` (which averages deep greys as F).
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _HIGH_DEPTH:
        return _high_depth_to_rgb(image, source_mode if source_mode in _HIGH_DEPTH else mode)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    elif mode in ("1", "L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = image.mode
    elif mode == "La":  # Pillow converts premultiplied grey only to LA
        image = image.convert("LA")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image, kind: str) -> Image.Image:
    """16-bit / 32-bit greyscale -> 8-bit RGB, scaled by the type's range (not clipped); no float64 copies.

    ``kind`` is the original mode; ``image`` is in that mode, or in F after a reduction.
    """
    array = np.asarray(image)
    if kind == "F":
        grey = _float_to_uint8(array)
    else:
        if array.dtype.kind == "f":  # averaged integers: back to the nearest integer
            with np.errstate(all="ignore"):
                array = np.nan_to_num(np.rint(np.clip(array, 0, 2**32 - 1)), nan=0.0).astype(np.int64)
        if kind == "I":
            grey = _int_to_uint8(array)
        else:  # I;16 family: exact v * 255 // 65535 in integers
            grey = (np.clip(array, 0, 65535).astype(np.uint32) * 255 // 65535).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")  # 2-D uint8: mode L


def _int_to_uint8(array: np.ndarray) -> np.ndarray:
    """32-bit integer greyscale: 8-bit data as it is, 16-bit data by 65535, anything larger by 2**32 - 1."""
    top = int(array.max(initial=0))
    values = np.clip(array, 0, None).astype(np.int64)
    if top <= 255:
        return values.astype(np.uint8)
    scale = 65535 if top <= 65535 else 2**32 - 1
    return (values * 255 // scale).astype(np.uint8)


def _float_to_uint8(array: np.ndarray) -> np.ndarray:
    """Float greyscale (or greyscale reduced as float): min..max of the finite values -> 0..255."""
    if array.dtype != np.float32:
        array = array.astype(np.float32)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return np.zeros(array.shape, dtype=np.uint8)
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    with np.errstate(all="ignore"):
        scaled = (array - np.float32(low)) * np.float32(255.0 / (high - low))
        return np.nan_to_num(np.clip(scaled, 0, 255), nan=0.0).astype(np.uint8)


def release_free_memory() -> None:
    """Hand memory that malloc keeps in its arenas back to the OS (glibc); a no-op elsewhere."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _load_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()
_libwebp = _load_libwebp()
#: Progressive JPEGs at 1/8 scale decoded from the scans that scale reads (off: Pillow decodes every scan).
_rewrite_progressive_jpeg = True


def _format_message(found: str | None) -> str:
    received = f"a {found} image" if found else "data that is not an image format this server can read"
    return f"Expected a {FORMATS_TEXT} image. Received: {received}."


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"
