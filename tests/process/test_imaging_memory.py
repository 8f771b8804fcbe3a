"""Decode memory is bounded by a small constant times the pixel count, and goes back afterwards.

Each check runs in a fresh Python process (so the memory of other tests and of
pytest does not interfere): it warms the decoders up on small images, then
decodes the worst images the backend accepts — a 16-bit PNG, an RGBA PNG and
a float TIFF at the pixel limit, a progressive 4:4:4 JPEG and a WebP at their
tighter limits — sampling its own resident set size (psutil, every millisecond)
while each decode runs. Each peak growth must stay under the image's
``decode_bytes_per_pixel`` (6 bytes per pixel for most; 7 and 18 for those two),
so under ``MEMORY_BYTES_PER_PIXEL`` times the pixel limit whatever the format,
and the resident size after all decodes must be back within a small margin of
where it started.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_backend.imaging import MEMORY_BYTES_PER_PIXEL, WEBP_BYTES_PER_PIXEL, decode_bytes_per_pixel
from tests.support.helpers import ROOT

MAX_PIXELS = 24_000_000
SIDE = 4898  # 24.0 MP: at the pixel limit the test sets
MARGIN = 24 * 1024 * 1024  # what may stay resident after the decodes (allocator slack)

CHILD = r"""
import json, sys, threading, time
import psutil
from model_backend.imaging import decode_image

paths, max_pixels = sys.argv[2:], int(sys.argv[1])
process = psutil.Process()
peak, sampling = [0], [True]

def sample():
    while sampling[0]:
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.001)

for path in paths:  # warm-up: import every plugin and codec on a small crop of the same format
    with open(path + ".small", "rb") as small:
        decode_image(small.read(), (224, 224), max_pixels=max_pixels)
datas = {}
for path in paths:
    with open(path, "rb") as f:
        datas[path] = f.read()
sampler = threading.Thread(target=sample, daemon=True)
start = process.memory_info().rss
sampler.start()
results = {}
for path, data in datas.items():
    before = process.memory_info().rss
    peak[0] = before
    array = decode_image(data, (224, 224), max_pixels=max_pixels, max_bytes=64 * 1024 * 1024)
    time.sleep(0.005)
    results[path] = {"peak_growth": peak[0] - before, "shape": list(array.shape)}
sampling[0] = False
sampler.join()
print(json.dumps({"start": start, "end": process.memory_info().rss, "results": results}))
"""


def _write(image: Image.Image, path: Path, fmt: str, **params) -> None:
    image.save(path, format=fmt, **params)
    image.crop((0, 0, 64, 48)).save(str(path) + ".small", format=fmt, **params)


def _stripes(mode: str, side: int, dtype) -> Image.Image:
    array = np.zeros((side, side), dtype=dtype)
    array[::7] = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 3.5
    return Image.fromarray(array)


@pytest.fixture(scope="module")
def worst_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("worst")
    images = {}
    images["16-bit PNG"] = (folder / "grey16.png", SIDE * SIDE)
    _write(_stripes("I;16", SIDE, np.uint16), images["16-bit PNG"][0], "PNG", compress_level=1)
    images["RGBA PNG"] = (folder / "rgba.png", SIDE * SIDE)
    _write(Image.new("RGBA", (SIDE, SIDE), (200, 30, 10, 128)), images["RGBA PNG"][0], "PNG", compress_level=1)
    images["float TIFF"] = (folder / "float.tif", SIDE * SIDE)
    _write(_stripes("F", SIDE, np.float32), images["float TIFF"][0], "TIFF", compression="tiff_adobe_deflate")
    jpeg_side = int((MAX_PIXELS * MEMORY_BYTES_PER_PIXEL / 7) ** 0.5)  # progressive 4:4:4: 7 bytes per pixel
    images["progressive JPEG"] = (folder / "photo.jpg", jpeg_side * jpeg_side)
    _write(Image.new("RGB", (jpeg_side, jpeg_side), (90, 140, 30)), images["progressive JPEG"][0], "JPEG",
           quality=80, progressive=True, subsampling=0)
    webp_side = int((MAX_PIXELS * MEMORY_BYTES_PER_PIXEL / WEBP_BYTES_PER_PIXEL) ** 0.5)  # the WebP limit
    images["WebP"] = (folder / "big.webp", webp_side * webp_side)
    _write(Image.new("RGB", (webp_side, webp_side), (90, 140, 30)), images["WebP"][0], "WEBP", quality=50, method=0)
    return images


@pytest.mark.slow
def test_peak_decode_memory_is_a_small_multiple_of_the_pixel_count_and_is_given_back(worst_images):
    paths = [str(path) for path, _ in worst_images.values()]
    completed = subprocess.run([sys.executable, "-c", CHILD, str(MAX_PIXELS), *paths],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    summary = {name: round(report["results"][str(path)]["peak_growth"] / pixels, 2)
               for name, (path, pixels) in worst_images.items()}  # bytes per pixel, shown on failure
    kept_mib = (report["end"] - report["start"]) / 2**20
    print(f"peak decode memory in bytes per pixel: {summary}; kept afterwards: {kept_mib:.1f} MiB")
    for name, (path, pixels) in worst_images.items():
        result = report["results"][str(path)]
        assert result["shape"] == [224, 224, 3]
        with Image.open(path) as image:
            per_pixel = decode_bytes_per_pixel(image)
        assert result["peak_growth"] <= per_pixel * pixels, summary
        # Whatever the format, the pixel limit bounds one decode's memory.
        assert result["peak_growth"] <= MEMORY_BYTES_PER_PIXEL * MAX_PIXELS, summary
    assert report["end"] - report["start"] <= MARGIN, f"{kept_mib:.0f} MiB kept; {summary}"
