"""Property-based fuzz of image decoding: any bytes give an RGB array or a typed error, nothing else.

Seeds are small valid images of every accepted format; Hypothesis truncates them,
flips bits, overwrites bytes and rewrites their width and height fields (with a
valid PNG CRC, so that the new size reaches the decoder). A small pixel limit
keeps each example fast while still exercising the "too large" path.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from model_backend.errors import BadImage, TooLarge
from model_backend.imaging import decode_image

# Pillow warns about the corrupt TIFF tags these tests make on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SIZE = (16, 20)  # height, width
MAX_PIXELS = 1_000_000
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def _encode(image, fmt, **params):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _seeds():
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    grey16 = Image.fromarray(rng.integers(0, 65535, (12, 16), dtype=np.uint16))
    return {
        "jpeg": _encode(rgb, "JPEG", quality=80),
        "progressive jpeg": _encode(rgb, "JPEG", progressive=True),
        "mpo": _encode(frames[0], "MPO", save_all=True, append_images=frames[1:]),
        "png": _encode(rgb, "PNG"),
        "png rgba": _encode(rgb.convert("RGBA"), "PNG"),
        "png 16-bit": _encode(grey16, "PNG"),
        "png palette": _encode(rgb.convert("P"), "PNG", transparency=3),
        "apng": _encode(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        "webp": _encode(rgb, "WEBP", quality=80),
        "webp animated": _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True),
        "gif": _encode(frames[0].convert("P"), "GIF", save_all=True, append_images=[frames[1].convert("P")]),
        "bmp": _encode(rgb, "BMP"),
        "bmp 1-bit": _encode(rgb.convert("1"), "BMP"),
        "tiff": _encode(rgb, "TIFF"),
        "tiff lzw": _encode(rgb, "TIFF", compression="tiff_lzw"),
        "tiff float": _encode(Image.fromarray(rng.random((12, 16), dtype=np.float32)), "TIFF"),
        "tiff 16-bit": _encode(grey16, "TIFF", compression="tiff_deflate"),
    }


SEEDS = _seeds()
NAMES = sorted(SEEDS)


def _check(data: bytes) -> None:
    try:
        array = decode_image(data, SIZE, max_pixels=MAX_PIXELS)
    except (BadImage, TooLarge) as exc:
        assert exc.message  # a message a user can read
        return
    assert array.shape == (16, 20, 3) and array.dtype == np.uint8


def test_the_seeds_are_valid_images():
    for data in SEEDS.values():
        assert decode_image(data, SIZE).shape == (16, 20, 3)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data):
    _check(data)


@FUZZ
@given(st.sampled_from(NAMES), st.binary(max_size=64))
def test_a_valid_header_followed_by_garbage(name, tail):
    seed = SEEDS[name]
    _check(seed[: min(len(seed), 40)] + tail)


@FUZZ
@given(st.sampled_from(NAMES), st.data())
def test_truncations(name, data):
    seed = SEEDS[name]
    _check(seed[: data.draw(st.integers(1, len(seed) - 1))])


@FUZZ
@given(st.sampled_from(NAMES), st.data())
def test_bit_flips_and_byte_overwrites(name, data):
    mutated = bytearray(SEEDS[name])
    for _ in range(data.draw(st.integers(1, 8))):
        # Most edits land in the first 200 bytes, where the headers are.
        limit = data.draw(st.sampled_from([min(200, len(mutated)), len(mutated)]))
        position = data.draw(st.integers(0, limit - 1))
        if data.draw(st.booleans()):
            mutated[position] ^= 1 << data.draw(st.integers(0, 7))
        else:
            mutated[position] = data.draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
    _check(bytes(mutated))


DIMENSIONS = st.sampled_from([0, 1, 2, 3, 255, 256, 999, 1000, 1001, 4095, 65535, 65536, 2**31 - 1, 2**32 - 1])


def _png_with_size(seed: bytes, width: int, height: int) -> bytes:
    body = b"IHDR" + struct.pack(">II", width, height) + seed[24:29]
    return seed[:12] + body + struct.pack(">I", zlib.crc32(body)) + seed[33:]


def _jpeg_with_size(seed: bytes, width: int, height: int) -> bytes:
    at = seed.index(b"\xff\xc0") if b"\xff\xc0" in seed else seed.index(b"\xff\xc2")
    return seed[: at + 5] + struct.pack(">HH", height & 0xFFFF, width & 0xFFFF) + seed[at + 9 :]


def _gif_with_size(seed: bytes, width: int, height: int) -> bytes:
    size = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
    mutated = bytearray(seed[:6] + size + seed[10:])
    at = mutated.index(b"\x2c")  # the first image descriptor: its size follows the offset
    mutated[at + 5 : at + 9] = size
    return bytes(mutated)


def _bmp_with_size(seed: bytes, width: int, height: int) -> bytes:
    return seed[:18] + struct.pack("<ii", _signed(width), _signed(height)) + seed[26:]


def _tiff_with_size(seed: bytes, width: int, height: int) -> bytes:
    assert seed[:4] == b"II*\x00"  # Pillow writes little-endian TIFFs
    mutated = bytearray(seed)
    ifd = struct.unpack_from("<I", mutated, 4)[0]
    for index in range(struct.unpack_from("<H", mutated, ifd)[0]):
        entry = ifd + 2 + 12 * index
        tag = struct.unpack_from("<H", mutated, entry)[0]
        if tag in (256, 257):  # ImageWidth, ImageLength: rewritten as one LONG
            value = (width if tag == 256 else height) & 0xFFFFFFFF
            struct.pack_into("<HHII", mutated, entry, tag, 4, 1, value)
    return bytes(mutated)


def _webp_with_size(seed: bytes, width: int, height: int) -> bytes:
    assert seed[12:16] == b"VP8X"  # the extended header: canvas width - 1 and height - 1, 24 bits each
    size = ((width - 1) & 0xFFFFFF).to_bytes(3, "little") + ((height - 1) & 0xFFFFFF).to_bytes(3, "little")
    return seed[:24] + size + seed[30:]


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


RESIZERS = {"png": _png_with_size, "png rgba": _png_with_size, "png 16-bit": _png_with_size,
            "jpeg": _jpeg_with_size, "progressive jpeg": _jpeg_with_size, "gif": _gif_with_size, "bmp": _bmp_with_size,
            "tiff": _tiff_with_size, "tiff lzw": _tiff_with_size, "webp animated": _webp_with_size}


@FUZZ
@given(st.sampled_from(sorted(RESIZERS)), DIMENSIONS, DIMENSIONS, st.booleans())
def test_width_and_height_fields_rewritten(name, width, height, negate_height):
    if negate_height and name == "bmp":
        height = -height  # BMP: a negative height means top-down rows
    _check(RESIZERS[name](SEEDS[name], width, height))
