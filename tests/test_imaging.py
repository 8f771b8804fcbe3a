"""Decoding untrusted bytes: every mode, EXIF orientation, and every way bytes can be bad."""

import io

import numpy as np
import pytest
from PIL import Image

from model_backend.errors import BadImage, TooLarge
from model_backend.imaging import decode_image

SIZE = (24, 32)  # height, width


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def red_left_blue_right(width=64, height=48) -> Image.Image:
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:, : width // 2] = (255, 0, 0)
    array[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(array)


@pytest.mark.parametrize(
    "mode, fmt",
    [("RGB", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("L", "PNG"), ("P", "PNG"),
     ("P", "GIF"), ("CMYK", "JPEG"), ("CMYK", "TIFF"), ("1", "BMP"), ("RGB", "WEBP"), ("F", "TIFF")],
)
def test_every_mode_becomes_rgb_uint8_at_the_input_size(mode, fmt):
    data = encode(red_left_blue_right().convert(mode), fmt)
    array = decode_image(data, SIZE)
    assert array.shape == (24, 32, 3)
    assert array.dtype == np.uint8


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    ramp = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    array = decode_image(encode(Image.fromarray(ramp), "PNG"), SIZE)
    assert array.min() < 20 and array.max() > 235
    assert (array[..., 0] == array[..., 2]).all()


def test_transparency_is_composited_on_white():
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    array = decode_image(encode(image, "PNG"), SIZE)
    assert (array == 255).all()


def test_exif_orientation_is_applied():
    image = red_left_blue_right()
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180 degrees: red must end up on the right
    array = decode_image(encode(image, "JPEG", exif=exif.tobytes()), SIZE).astype(int)
    left, right = array[:, :8].mean(axis=(0, 1)), array[:, -8:].mean(axis=(0, 1))
    assert left[2] > left[0] and right[0] > right[2]


def test_large_jpeg_is_decoded_in_draft_mode_to_the_input_size():
    big = red_left_blue_right(4000, 3000)
    array = decode_image(encode(big, "JPEG", quality=85), (224, 224))
    assert array.shape == (224, 224, 3)
    assert array[:, :100, 0].mean() > 200 and array[:, -100:, 2].mean() > 200


@pytest.mark.parametrize(
    "data, error, fragment",
    [
        (b"", BadImage, "empty"),
        (b"hello, I am not an image", BadImage, "not an image format"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, BadImage, "could not be decoded|not an image format"),
    ],
)
def test_bad_bytes_are_typed_errors(data, error, fragment):
    with pytest.raises(error, match=fragment):
        decode_image(data, SIZE)


def test_truncated_file_is_refused():
    data = encode(red_left_blue_right(400, 300), "JPEG")
    with pytest.raises(BadImage, match="could not be decoded"):
        decode_image(data[: len(data) // 2], SIZE)


def test_byte_limit():
    data = encode(red_left_blue_right(), "PNG")
    with pytest.raises(TooLarge, match="limit"):
        decode_image(data, SIZE, max_bytes=len(data) - 1)


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("L", (6000, 6000)), "PNG")  # tiny file, 36 MP
    assert len(bomb) < 200_000
    with pytest.raises(TooLarge, match="MP"):
        decode_image(bomb, SIZE, max_pixels=10_000_000)
