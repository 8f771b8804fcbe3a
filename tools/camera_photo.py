"""Deterministic, offline test photos that decode like real camera files (for the bench and the decode tests).

An upscaled photo is a poor stand-in for a camera JPEG: it is smooth, encodes
small and decodes fast. These generators instead build a mosaic of the natural
photographs that scikit-image ships (astronaut, chelsea, coffee, rocket, the
Hubble deep field, retina, immunohistochemistry, motorcycle), each at its
native resolution (cropped, mirrored, never scaled up), add camera-like sensor
noise (luma plus weaker, blotchier chroma noise), and encode with libjpeg
through Pillow the way a phone does: quality 92, 4:2:0 chroma subsampling,
optimised Huffman tables, an EXIF block with Make, Model and Orientation.

Nothing is downloaded and the bytes depend only on the arguments (a fixed seed)
and on the installed Pillow/libjpeg. Every function caches its bytes, so
repeated calls are cheap.

Sizes produced (Pillow 13 / libjpeg-turbo, measured here):

=================================================  ==========  ===========
call                                               pixels      bytes
=================================================  ==========  ===========
``camera_jpeg()``                                  4000x3000   about 3.8 MB
``camera_jpeg(progressive=True)``                  4000x3000   about 3.5 MB
``camera_png()`` (default 2000x1500)               2000x1500   about 5.7 MB
``camera_webp()`` (4000x3000, quality 90)          4000x3000   about 3.2 MB
=================================================  ==========  ===========

``size`` is always (width, height) of the pixels as stored. With an
``orientation`` other than 1 the stored pixels are the sensor's frame and the
EXIF tag says how to turn them for display (orientation 6: a portrait photo
stored as landscape, as phones do), so a correct decoder shows the transposed
frame.
"""

from __future__ import annotations

import functools
import io

import numpy as np

#: scikit-image photos used as mosaic tiles (loader name in ``skimage.data``); all ship with the package.
_SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")
_SEED = 20240901
#: Sensor noise (8-bit levels, standard deviation): luma, and chroma at a quarter resolution.
LUMA_NOISE = 2.5
CHROMA_NOISE = 1.5
JPEG_QUALITY = 92
WEBP_QUALITY = 90
CAMERA_SIZE = (4000, 3000)
PNG_SIZE = (2000, 1500)
_EXIF_ORIENTATION, _EXIF_MAKE, _EXIF_MODEL, _EXIF_SOFTWARE = 0x0112, 0x010F, 0x0110, 0x0131


def camera_jpeg(size: tuple[int, int] = CAMERA_SIZE, *, progressive: bool = False, orientation: int = 1) -> bytes:
    """A camera-like JPEG of ``size`` (width, height) stored pixels: quality 92, 4:2:0, EXIF orientation tag.

    The default is 12 MP (4000x3000), about 3.8 MB baseline; ``progressive=True``
    writes a progressive JPEG of the same pixels (as some phones and most web
    pipelines do).
    """
    return _camera_jpeg(tuple(size), bool(progressive), int(orientation))


def camera_png(size: tuple[int, int] = PNG_SIZE) -> bytes:
    """The same noisy photo as an 8-bit RGB PNG (zlib level 6); the default 3 MP is about 5.7 MB.

    A 12-MP noisy PNG is about 22 MB, above the server's default 20 MiB byte limit.
    """
    return _camera_png(tuple(size))


def camera_webp(size: tuple[int, int] = CAMERA_SIZE) -> bytes:
    """The same noisy photo as a lossy WebP at quality 90; the default 12 MP is about 3.2 MB."""
    return _camera_webp(tuple(size))


def camera_pixels(size: tuple[int, int] = CAMERA_SIZE) -> np.ndarray:
    """The noisy mosaic itself: RGB ``uint8`` of shape (height, width, 3). A read-only cached array."""
    return _camera_pixels(tuple(size))


@functools.lru_cache(maxsize=8)
def _camera_jpeg(size: tuple[int, int], progressive: bool, orientation: int) -> bytes:
    if orientation not in range(1, 9):
        raise ValueError(f"Expected an EXIF orientation from 1 to 8. Received: {orientation}")
    image = _pil(size)
    buffer = io.BytesIO()
    image.save(
        buffer, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:0", optimize=True,
        progressive=progressive, exif=_exif(orientation),
    )
    return buffer.getvalue()


@functools.lru_cache(maxsize=4)
def _camera_png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    _pil(size).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


@functools.lru_cache(maxsize=4)
def _camera_webp(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    _pil(size).save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4)
    return buffer.getvalue()


def _pil(size: tuple[int, int]):
    from PIL import Image

    return Image.fromarray(_camera_pixels(size), mode="RGB")


def _exif(orientation: int):
    from PIL import Image

    exif = Image.Exif()
    exif[_EXIF_MAKE] = "warmserve"
    exif[_EXIF_MODEL] = "synthetic camera"
    exif[_EXIF_SOFTWARE] = "tools.camera_photo"
    exif[_EXIF_ORIENTATION] = orientation
    return exif


@functools.lru_cache(maxsize=4)
def _camera_pixels(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"Expected a positive (width, height). Received: {size}")
    rng = np.random.default_rng(_SEED)
    mosaic = _mosaic(width, height, rng)
    noisy = _add_sensor_noise(mosaic, rng)
    noisy.flags.writeable = False
    return noisy


def _photos() -> list[np.ndarray]:
    from skimage import data

    photos = [np.ascontiguousarray(getattr(data, name)()[..., :3]) for name in _SOURCES]
    left, _right, _disparity = data.stereo_motorcycle()
    photos.append(np.ascontiguousarray(left[..., :3]))
    return photos


def _mosaic(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of native-resolution photo crops (mirrored at random) that fill a (height, width, 3) canvas."""
    photos = _photos()
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    top = 0
    while top < height:
        row_height = min(int(rng.integers(300, 600)), height - top)
        left = 0
        while left < width:
            candidates = [p for p in photos if p.shape[0] >= row_height]
            photo = candidates[int(rng.integers(len(candidates)))]
            tile_width = min(int(rng.integers(200, photo.shape[1] + 1)), width - left)
            y = int(rng.integers(photo.shape[0] - row_height + 1))
            x = int(rng.integers(photo.shape[1] - tile_width + 1))
            tile = photo[y:y + row_height, x:x + tile_width]
            if rng.integers(2):
                tile = tile[:, ::-1]
            canvas[top:top + row_height, left:left + tile_width] = tile
            left += tile_width
        top += row_height
    return canvas


def _add_sensor_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian luma noise per pixel plus chroma noise at a quarter resolution (as a demosaiced sensor gives)."""
    height, width, _ = image.shape
    out = image.astype(np.float32)
    out += rng.normal(0.0, LUMA_NOISE, size=(height, width, 1)).astype(np.float32)
    chroma = rng.normal(0.0, CHROMA_NOISE, size=((height + 1) // 2, (width + 1) // 2, 3)).astype(np.float32)
    out += np.repeat(np.repeat(chroma, 2, axis=0), 2, axis=1)[:height, :width]
    np.clip(out, 0, 255, out=out)
    return np.rint(out).astype(np.uint8)
