"""Which decoder reads which pixels: libwebp for still WebPs, Pillow for the rest; same pixels and errors either way.

"Pillow only" below switches the libwebp path off (``imaging._libwebp = None``), as
where Pillow's libwebp cannot be found: the path every WebP took before.

Also the camera-like test photos (tools.camera_photo) and the decoder bench's
pure parts (tools.bench.decoders), which measure these choices.
"""

import io

import numpy as np
import pytest
from PIL import Image, WebPImagePlugin

from model_backend import imaging
from model_backend.errors import BadImage
from model_backend.imaging import decode_image
from tools import camera_photo
from tools.bench import decoders

SIZE = (224, 224)

if imaging._libwebp is None:
    pytest.skip("Pillow's libwebp was not found: every WebP goes through Pillow", allow_module_level=True)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    image = Image.fromarray(np.array(camera_photo.camera_pixels((width, height))))
    if mode == "RGBA":  # a transparent band and a soft alpha ramp
        alpha = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
        alpha[: height // 4] = 0
        image.putalpha(Image.fromarray(alpha))
    return image


def decode_with_pillow_only(monkeypatch, data: bytes, size=SIZE) -> np.ndarray:
    with monkeypatch.context() as patch:
        patch.setattr(imaging, "_libwebp", None)
        return decode_image(data, size)


def count_libwebp_decodes(monkeypatch) -> list[int]:
    calls = []
    original = imaging._libwebp.decode_rgba_into

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(imaging._libwebp, "decode_rgba_into", spy)
    return calls


WEBP_CASES = {
    "lossy RGB": lambda: encode(photo(640, 480), "WEBP", quality=90),
    "lossy RGBA": lambda: encode(photo(640, 480, "RGBA"), "WEBP", quality=90),
    "lossless RGB": lambda: encode(photo(320, 240), "WEBP", lossless=True),
    "lossless RGBA": lambda: encode(photo(320, 240, "RGBA"), "WEBP", lossless=True),
    "lossy RGB, reduced before the resize": lambda: encode(photo(2000, 1500), "WEBP", quality=80),
    "smaller than the input size": lambda: encode(photo(100, 60), "WEBP", quality=90),
    "orientation 6": lambda: encode(photo(800, 600), "WEBP", quality=90, exif=camera_photo._exif(6)),
}


@pytest.mark.parametrize("name", sorted(WEBP_CASES))
def test_a_still_webp_is_decoded_by_libwebp_to_the_pixels_pillow_gives(monkeypatch, name):
    data = WEBP_CASES[name]()
    expected = decode_with_pillow_only(monkeypatch, data)
    calls = count_libwebp_decodes(monkeypatch)
    array = decode_image(data, SIZE)
    assert calls == [1]
    assert array.shape == (224, 224, 3) and array.dtype == np.uint8
    assert np.abs(array.astype(int) - expected).max() <= 1


def test_webp_orientation_is_honoured_on_the_libwebp_path():
    stored = photo(800, 600)
    upright = decode_image(encode(stored.transpose(Image.Transpose.ROTATE_270), "WEBP", lossless=True), SIZE)
    turned = decode_image(encode(stored, "WEBP", lossless=True, exif=camera_photo._exif(6)), SIZE)
    assert np.abs(turned.astype(int) - upright).mean() < 1.0


def test_a_transparent_webp_is_composited_on_white():
    image = Image.new("RGBA", (64, 48), (255, 0, 0, 255))
    image.paste((0, 0, 255, 0), (0, 0, 32, 48))  # left half fully transparent
    array = decode_image(encode(image, "WEBP", lossless=True), (24, 32)).astype(int)
    assert (array[:, :12] >= 250).all()
    assert (array[:, -12:, 0] >= 250).all() and (array[:, -12:, 1:] <= 5).all()


def test_an_animated_webp_falls_back_to_pillow_and_its_first_frame(monkeypatch):
    frames = [Image.new("RGB", (64, 48), colour) for colour in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=True)
    calls = count_libwebp_decodes(monkeypatch)
    red, green, blue = decode_image(buffer.getvalue(), (24, 32)).astype(int).mean(axis=(0, 1))
    assert calls == []
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_truncated_webp_gets_the_same_error_as_with_pillow_alone(monkeypatch, cut):
    data = WEBP_CASES["lossy RGB"]()
    data = data[: int(len(data) * cut)]
    with pytest.raises(BadImage, match="could not be decoded") as with_pillow:
        decode_with_pillow_only(monkeypatch, data)
    with pytest.raises(BadImage, match="could not be decoded") as with_libwebp:
        decode_image(data, SIZE)
    assert str(with_libwebp.value) == str(with_pillow.value)


def test_webp_data_libwebp_refuses_goes_to_pillow(monkeypatch):
    monkeypatch.setattr(imaging._libwebp, "decode_rgba_into", lambda *args: None)  # libwebp's NULL
    loads = []
    original_load = WebPImagePlugin.WebPImageFile.load
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", lambda self: loads.append(1) or original_load(self))
    data = WEBP_CASES["lossy RGB"]()
    array = decode_image(data, SIZE)
    assert loads and array.shape == (224, 224, 3)
    assert np.array_equal(array, decode_with_pillow_only(monkeypatch, data))


def test_pillow_never_decodes_a_still_webp_when_libwebp_can(monkeypatch):
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", lambda self: pytest.fail("Pillow decoded the pixels"))
    assert decode_image(WEBP_CASES["lossy RGBA"](), SIZE).shape == (224, 224, 3)


def test_the_webp_pixel_limit_is_still_checked_from_the_header(monkeypatch):
    calls = count_libwebp_decodes(monkeypatch)
    data = encode(Image.new("RGB", (2000, 1000)), "WEBP", quality=50)
    with pytest.raises(Exception, match="for a WEBP"):
        decode_image(data, SIZE, max_pixels=1_000_000)
    assert calls == []


# -- JPEG stays with Pillow: its draft scale is what the bench's candidates reproduce -----


@pytest.mark.parametrize("size", [(1800, 1800), (1000, 700), (1001, 699), (900, 500), (700, 300), (5000, 260),
                                  (100, 80)])
def test_the_bench_reproduces_pillows_draft_scale(size):
    with Image.open(io.BytesIO(camera_photo.camera_jpeg(size))) as image:
        image.draft("RGB", (224, 224))
        drafted = image.size
    scale = decoders.draft_scale(*size)
    assert (-(-size[0] // scale), -(-size[1] // scale)) == drafted


def test_simplejpeg_at_the_draft_scale_gives_pillows_pixels():
    data = camera_photo.camera_jpeg((1600, 1200))
    found = decoders.candidates("JPEG", include=("pillow", "simplejpeg"))  # finding libturbojpeg runs ldconfig
    reference = found["pillow"](data)
    assert np.abs(decoders._unpreprocess(found["simplejpeg"](data)) - decoders._unpreprocess(reference)).max() < 1


def test_the_bench_shows_the_servers_path_beside_pillow_for_a_progressive_jpeg(monkeypatch):
    rewrites = []
    original = imaging.eighth_scale_jpeg
    monkeypatch.setattr(imaging, "eighth_scale_jpeg", lambda data: rewrites.append(1) or original(data))
    assert set(decoders.candidates("JPEG", include=("pillow", "imaging"))) == {"pillow"}
    found = decoders.candidates("JPEG progressive", include=("pillow", "imaging"))
    data = camera_photo.camera_jpeg((1800, 1800), progressive=True)
    reference = found["pillow"](data)
    assert rewrites == []  # pillow: the path before, every scan decoded
    assert np.array_equal(found["imaging"](data), reference)
    assert rewrites == [1]  # imaging: the server's path, from the scans 1/8 scale reads
    assert imaging._rewrite_progressive_jpeg is True and imaging._libwebp is not None  # switched back on


def test_the_camera_jpeg_orientation_is_honoured():
    upright = decode_image(camera_photo.camera_jpeg((1200, 900)), SIZE)
    turned = decode_image(camera_photo.camera_jpeg((1200, 900), orientation=6), SIZE)
    assert np.abs(turned.astype(int) - np.rot90(upright, k=-1)).max() <= 2


# -- the test photos ----------------------------------------------------------------


def test_camera_photos_are_deterministic_and_cached():
    first = camera_photo.camera_jpeg((640, 480), orientation=3)
    assert camera_photo.camera_jpeg((640, 480), orientation=3) is first
    camera_photo._camera_jpeg.cache_clear()
    camera_photo._camera_pixels.cache_clear()
    assert camera_photo.camera_jpeg((640, 480), orientation=3) == first


def test_camera_jpeg_is_a_camera_like_jpeg():
    data = camera_photo.camera_jpeg((640, 480), orientation=8)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (640, 480) and image.mode == "RGB"
        assert image.getexif()[0x0112] == 8
        assert [layer[1:3] for layer in image.layer] == [(2, 2), (1, 1), (1, 1)]  # 4:2:0
    with Image.open(io.BytesIO(camera_photo.camera_jpeg((640, 480), progressive=True))) as image:
        assert image.info.get("progressive") == 1


def test_camera_png_and_webp_are_the_same_photo():
    size = (320, 240)
    pixels = np.array(camera_photo.camera_pixels(size))
    with Image.open(io.BytesIO(camera_photo.camera_png(size))) as image:
        assert image.format == "PNG" and np.array_equal(np.asarray(image), pixels)
    with Image.open(io.BytesIO(camera_photo.camera_webp(size))) as image:
        assert image.format == "WEBP" and np.abs(np.asarray(image.convert("RGB")).astype(int) - pixels).mean() < 8


def test_a_bad_orientation_is_refused():
    with pytest.raises(ValueError, match="orientation"):
        camera_photo.camera_jpeg((64, 48), orientation=9)


@pytest.mark.slow
def test_the_default_camera_jpeg_is_a_12_mp_file_of_3_to_5_mb():
    data = camera_photo.camera_jpeg()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (4000, 3000)
    assert 3_000_000 <= len(data) <= 5_000_000


# -- the decoder bench's table -------------------------------------------------------------


def test_the_decoder_table_shows_every_row_and_the_footer():
    rows = [{"photo": "camera JPEG 12 MP", "bytes": 3_750_000, "decoder": name, "median_ms": 30.0, "cpu_ms": 28.0,
             "cpu_ratio_to_pillow": ratio, "peak_mib": None, "peak_bytes_per_pixel": None,
             "max_pixel_difference": 0.0} for name, ratio in (("pillow", 1.0), ("simplejpeg", 0.95))]
    result = {"rows": rows, "rounds": 5, "input_size": [224, 224], "preprocess": "torch", "turbojpeg": "loaded"}
    table = decoders.format_table(result)
    assert "simplejpeg" in table and "0.950" in table and "3.75 MB" in table
    assert "median" in table.splitlines()[-1] and "turbojpeg: loaded" in table
