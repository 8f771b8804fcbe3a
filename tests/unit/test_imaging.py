"""Decoding untrusted bytes: every mode, EXIF orientation, and every way bytes can be bad."""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from model_backend.errors import BadImage, TooLarge
from model_backend import imaging
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


# -- the format allow-list --------------------------------------------------------

LISTED = {"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"}


def _write_unlisted(fmt: str) -> bytes | None:
    """A small image written by Pillow in ``fmt``, or None where Pillow cannot write it here."""
    for mode in ("RGB", "L", "1", "P", "RGBA"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # IM: deprecated, still read by Pillow
                return encode(red_left_blue_right(16, 16).convert(mode), fmt)
        except Exception:  # noqa: BLE001 - this writer does not take this mode (or needs a missing library)
            continue
    return None


Image.init()
UNLISTED = {fmt: data for fmt in sorted(set(Image.SAVE) - LISTED) if (data := _write_unlisted(fmt)) is not None}


@pytest.mark.parametrize("fmt", sorted(UNLISTED))
def test_every_format_outside_the_readme_list_is_refused(fmt):
    with pytest.raises(BadImage, match="JPEG, PNG, WebP, GIF, BMP or TIFF"):
        decode_image(UNLISTED[fmt], SIZE)


def test_the_refused_formats_include_those_the_issue_names():
    assert {"PCX", "SGI", "TGA", "IM", "ICO", "PPM", "XBM", "EPS", "DDS", "DIB", "QOI"} <= set(UNLISTED)


def test_eps_never_reaches_ghostscript(monkeypatch):
    from PIL import EpsImagePlugin

    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *args, **kwargs: calls.append(args))
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    with pytest.raises(BadImage, match="not an image format"):
        decode_image(encode(red_left_blue_right(16, 16), "EPS"), SIZE)
    assert calls == []


# -- every listed format and mode -------------------------------------------------


def _frames(*colours, size=(64, 48)):
    return [Image.new("RGB", size, colour) for colour in colours]


def _save_all(frames, fmt, **params) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], **params)
    return buffer.getvalue()


def _palette_gif_with_transparency() -> bytes:
    image = Image.new("P", (64, 48), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(0, (0, 0, 32, 48))  # left half: index 0, transparent
    return encode(image, "GIF", transparency=0)


def _array_image(array, mode=None):
    return Image.fromarray(array) if mode is None else Image.frombytes(mode, array.shape[::-1], array.tobytes())


RAMP16 = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)

LISTED_CASES = {
    "MPO (camera JPEG)": lambda: _save_all(_frames("red", "blue"), "MPO"),
    "16-bit PNG": lambda: encode(Image.fromarray(RAMP16), "PNG"),
    "float TIFF": lambda: encode(Image.fromarray(RAMP16.astype(np.float32) / 7.0), "TIFF"),
    "I;16 TIFF": lambda: encode(Image.fromarray(RAMP16), "TIFF"),
    "I;16B TIFF": lambda: encode(_array_image(RAMP16.astype(">u2"), "I;16B"), "TIFF"),
    "32-bit integer TIFF": lambda: encode(Image.fromarray(RAMP16.astype(np.int32) * 3000), "TIFF"),
    "palette GIF with transparency": _palette_gif_with_transparency,
    "animated GIF": lambda: _save_all(_frames("red", "blue", "green"), "GIF", duration=50, loop=0),
    "animated WebP": lambda: _save_all(_frames("red", "blue", "green"), "WEBP", duration=50, loop=0, lossless=True),
    "animated PNG": lambda: _save_all(_frames("red", "blue"), "PNG", duration=50),
    "multipage TIFF": lambda: _save_all(_frames("red", "blue"), "TIFF"),
    "LZW TIFF": lambda: encode(red_left_blue_right(), "TIFF", compression="tiff_lzw"),
    "JPEG-in-TIFF": lambda: encode(red_left_blue_right(), "TIFF", compression="jpeg"),
    "YCbCr TIFF": lambda: encode(red_left_blue_right().convert("YCbCr"), "TIFF"),
    "RGBA WebP": lambda: encode(red_left_blue_right().convert("RGBA"), "WEBP", lossless=True),
    "grey JPEG": lambda: encode(red_left_blue_right().convert("L"), "JPEG"),
    "progressive JPEG": lambda: encode(red_left_blue_right(), "JPEG", progressive=True),
    "RGBA BMP": lambda: encode(red_left_blue_right().convert("RGBA"), "BMP"),
    "palette BMP": lambda: encode(red_left_blue_right().convert("P"), "BMP"),
    "1-bit PNG": lambda: encode(red_left_blue_right().convert("1"), "PNG"),
    "grey PNG with a transparent value": lambda: encode(_two_halves("L", 64, 48, 0, 200), "PNG", transparency=0),
    "RGB PNG with a transparent colour": lambda: encode(red_left_blue_right(), "PNG", transparency=(0, 0, 255)),
}


@pytest.mark.parametrize("name", sorted(LISTED_CASES))
def test_every_listed_format_becomes_rgb_uint8(name):
    array = decode_image(LISTED_CASES[name](), SIZE)
    assert array.shape == (24, 32, 3)
    assert array.dtype == np.uint8


@pytest.mark.parametrize(
    "name", ["MPO (camera JPEG)", "animated GIF", "animated WebP", "animated PNG", "multipage TIFF"]
)
def test_only_the_first_frame_is_used(name):
    array = decode_image(LISTED_CASES[name](), SIZE).astype(int)
    red, green, blue = array.mean(axis=(0, 1))
    assert red > 200 and green < 60 and blue < 60


def test_mpo_is_read_as_such():
    assert Image.open(io.BytesIO(LISTED_CASES["MPO (camera JPEG)"]())).format == "MPO"


def test_later_frames_are_never_decoded(monkeypatch):
    from PIL import GifImagePlugin, WebPImagePlugin

    seeks = []

    def spy(original):
        def _seek(self, frame, *args):
            seeks.append(frame)
            return original(self, frame, *args)
        return _seek

    for cls in (GifImagePlugin.GifImageFile, WebPImagePlugin.WebPImageFile):  # _seek: what seek and n_frames use
        monkeypatch.setattr(cls, "_seek", spy(cls._seek))
    frames = _frames(*["red", "blue"] * 20)
    decode_image(_save_all(frames, "GIF", duration=20), SIZE)
    decode_image(_save_all(frames, "WEBP", duration=20, lossless=True), SIZE)
    assert [frame for frame in seeks if frame != 0] == []


@pytest.mark.parametrize("name", ["palette GIF with transparency", "grey PNG with a transparent value",
                                  "RGB PNG with a transparent colour"])
def test_transparent_colours_become_white(name):
    array = decode_image(LISTED_CASES[name](), SIZE).astype(int)
    transparent = array[:, :14] if name != "RGB PNG with a transparent colour" else array[:, -14:]
    assert (transparent == 255).all()


# -- large images: reduced early, same picture -------------------------------------


def _two_halves(mode, width, height, left, right, **info):
    image = Image.new(mode, (width, height), right)
    image.paste(left, (0, 0, width // 2, height))
    image.info.update(info)
    return image


@pytest.mark.parametrize(
    "mode, fmt, left, right, expected_left, expected_right",
    [
        ("RGB", "PNG", (255, 0, 0), (0, 0, 255), (255, 0, 0), (0, 0, 255)),
        ("RGBA", "PNG", (255, 0, 0, 255), (0, 0, 0, 0), (255, 0, 0), (255, 255, 255)),
        ("LA", "PNG", (0, 255), (0, 0), (0, 0, 0), (255, 255, 255)),
        ("CMYK", "TIFF", (0, 255, 255, 0), (255, 255, 0, 0), (255, 0, 0), (0, 0, 255)),
        ("1", "BMP", 0, 1, (0, 0, 0), (255, 255, 255)),
        ("I;16", "PNG", 0, 65535, (0, 0, 0), (255, 255, 255)),
        ("F", "TIFF", -5.0, 5.0, (0, 0, 0), (255, 255, 255)),
    ],
)
def test_large_images_are_reduced_to_the_same_picture(mode, fmt, left, right, expected_left, expected_right):
    params = {"compression": "tiff_lzw"} if fmt == "TIFF" else {}
    data = encode(_two_halves(mode, 3000, 2000, left, right), fmt, **params)
    array = decode_image(data, SIZE).astype(int)
    assert np.abs(array[:, :12] - expected_left).max() <= 2
    assert np.abs(array[:, -12:] - expected_right).max() <= 2


def test_large_palette_image_with_transparency_is_composited_after_reduction():
    image = Image.new("P", (3000, 2000), 1)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(0, (0, 0, 1500, 2000))
    array = decode_image(encode(image, "PNG", transparency=0), SIZE).astype(int)
    assert (array[:, :12] == 255).all()
    assert np.abs(array[:, -12:] - (0, 0, 255)).max() <= 2


@pytest.mark.parametrize("side", [64, 3000])
def test_dark_sixteen_bit_image_stays_dark_at_any_size(side):
    dark = np.full((side, side), 1000, dtype=np.uint16)  # 1000 / 65535 of full scale: nearly black
    array = decode_image(encode(Image.fromarray(dark), "PNG"), SIZE)
    assert array.max() <= 4


@pytest.mark.parametrize("size", [(1, 200_000), (200_000, 1), (7, 30_000)])
def test_extreme_aspect_ratios_decode(size):
    width, height = size
    array = decode_image(encode(Image.new("L", size, 128), "PNG"), SIZE)
    assert array.shape == (24, 32, 3) and abs(int(array.mean()) - 128) <= 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_quarter_turn_orientation_on_a_large_image(fmt):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: red on the left must end up on top
    data = encode(red_left_blue_right(3000, 1500), fmt, exif=exif.tobytes())
    array = decode_image(data, (40, 20)).astype(int)  # height 40, width 20
    top, bottom = array[:8].mean(axis=(0, 1)), array[-8:].mean(axis=(0, 1))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]


# -- bounds before decoding ---------------------------------------------------------


def test_pixel_limit_is_checked_before_any_pixel_is_decoded(monkeypatch):
    from PIL import ImageFile

    loads = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self.format))
    for fmt in ("PNG", "GIF", "BMP", "TIFF", "WEBP", "JPEG"):
        with pytest.raises(TooLarge, match="MP"):
            decode_image(encode(Image.new("L", (3000, 1000)), fmt), SIZE, max_pixels=2_000_000)
    assert loads == []


def test_webp_has_a_tighter_pixel_limit_for_its_larger_decode_cost():
    data = encode(Image.new("RGB", (3000, 1000)), "WEBP")  # 3 MP
    assert decode_image(data, SIZE, max_pixels=9_000_000).shape == (24, 32, 3)  # WebP limit: 9 MP * 6 / 18
    with pytest.raises(TooLarge, match="for a WEBP"):
        decode_image(data, SIZE, max_pixels=8_900_000)
    assert decode_image(encode(Image.new("RGB", (3000, 1000)), "PNG"), SIZE, max_pixels=3_000_000).shape[2] == 3


@pytest.mark.parametrize("subsampling, per_pixel", [(0, 7.0), (1, 6.0), (2, 6.0)])
def test_jpeg_limit_follows_the_coefficient_buffer_libjpeg_may_need(subsampling, per_pixel):
    image = Image.new("RGB", (3000, 1000), (30, 90, 200))
    data = encode(image, "JPEG", progressive=True, subsampling=subsampling)
    assert imaging.decode_bytes_per_pixel(Image.open(io.BytesIO(data))) == per_pixel
    allowed = int(3_000_000 * per_pixel / imaging.MEMORY_BYTES_PER_PIXEL) + 1
    assert decode_image(data, SIZE, max_pixels=allowed).shape == (24, 32, 3)
    if per_pixel > imaging.MEMORY_BYTES_PER_PIXEL:
        with pytest.raises(TooLarge, match="for a JPEG"):
            decode_image(data, SIZE, max_pixels=3_000_000)


# -- every mode, through the same two steps the decoder uses -------------------------

ALL_MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
             "I", "I;16", "I;16B", "I;16L", "F"]


def test_the_mode_list_is_the_one_the_decoder_accepts():
    assert set(ALL_MODES) | {"I;16N"} == imaging._KNOWN_MODES


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("width", [40, 3000])
def test_every_mode_reduces_and_converts_to_rgb(mode, width):
    image = Image.new(mode, (width, 700))
    rgb = imaging.to_rgb(imaging.reduce_image(image, (32, 24)), source_mode=mode)
    assert rgb.mode == "RGB"
    # Box-reduced by whole factors to no less than 3x the target: 3000 / 31, 700 / 9 (rounded up).
    assert rgb.size == ({40: 40, 3000: 97}[width], 78)
    if mode in ("LA", "La", "PA", "RGBA", "RGBa"):  # all transparent
        assert np.asarray(rgb).min() == 255


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_truncated_images_of_every_listed_format_are_refused(fmt):
    noise = np.random.default_rng(3).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    image = Image.fromarray(noise).convert("P") if fmt == "GIF" else Image.fromarray(noise)
    data = encode(image, fmt)
    for cut in (len(data) // 2, len(data) - 64):
        with pytest.raises(BadImage, match="could not be decoded"):
            decode_image(data[:cut], SIZE)


def test_a_progressive_jpeg_of_more_scans_than_any_encoder_writes_is_refused_before_decoding():
    # each empty scan is a few bytes and one more pass of the decoder over the whole image: 20,000 took 3 s of CPU
    from tests.support.standin import progressive_jpeg_of_many_scans

    usual = progressive_jpeg_of_many_scans(3, side=320, extra_scans=0)
    assert 1 < usual.count(b"\xff\xda") <= 16
    assert decode_image(usual, (224, 224)).shape == (224, 224, 3)
    at_limit = progressive_jpeg_of_many_scans(3, side=320, extra_scans=imaging.MAX_JPEG_SCANS - usual.count(b"\xff\xda"))
    assert decode_image(at_limit, (224, 224)).shape == (224, 224, 3)
    with pytest.raises(BadImage, match=rf"progressive JPEG of {imaging.MAX_JPEG_SCANS + 1} scans; at most {imaging.MAX_JPEG_SCANS}"):
        decode_image(progressive_jpeg_of_many_scans(3, side=320, extra_scans=imaging.MAX_JPEG_SCANS + 1 - usual.count(b"\xff\xda")),
                     (224, 224))
    assert imaging.declared_pixels(at_limit) == 320 * 320 * (imaging.MAX_JPEG_SCANS // imaging.SCANS_PER_PASS)
