"""Which decoder is fastest per format: Pillow against simplejpeg, PyTurboJPEG and libwebp, decode to model input.

    python -m tools.bench.decoders [--rounds N] [--no-memory] [--turbojpeg-lib PATH] [--json]

Each candidate turns the bytes into what the model gets: a 224x224 RGB
``uint8`` array (EfficientNet-Lite0's input), then the model's numpy
preprocessing (``torch`` mode), so a time is the whole decode + resize +
preprocess path. Candidates:

``pillow``      :func:`model_backend.imaging.decode_image` with Pillow decoding every pixel of every
                scan (its libwebp path and its progressive-JPEG rewrite switched off): every check,
                JPEG draft mode (DCT scaling), other formats box-reduced (``Image.reduce``); the
                path before libwebp and the rewrite were adopted
``imaging``     ``decode_image`` as the server runs it, on the photos where it differs from
                ``pillow``: still WebPs decoded by ``WebPDecodeRGBAInto`` of Pillow's own libwebp,
                through ctypes; progressive JPEGs at 1/8 scale decoded from the scans that scale
                reads (:mod:`model_backend.jpeg_scans`)
``simplejpeg``  bare ``simplejpeg.decode_jpeg`` (no checks) at the DCT scale Pillow's draft picks,
                then the same bilinear resize: the same pixels, so the times compare like for like
``turbojpeg``   bare PyTurboJPEG, the same way (only where its shared library libturbojpeg loads)

simplejpeg and PyTurboJPEG are optional here (``pip install simplejpeg PyTurboJPEG``);
a candidate that is not installed is left out, and the footer says why turbojpeg is.

The photos are camera-like (:mod:`tools.camera_photo`): a 12-MP JPEG, baseline
and progressive, a 3-MP PNG and a 12-MP WebP, plus the bench's 451x300 chelsea
JPEG. Times are interleaved (every round calls every candidate once, in a
rotated order); the medians of ``--rounds`` wall and thread-CPU times are
reported, with the CPU time as a ratio to ``pillow`` (the CPU time of the
decoding thread is what other load on a shared machine disturbs least). Peak
memory is measured per decode in a fresh child process: the
resident-set high-water mark (``/proc/self/status`` VmHWM, reset through
``/proc/self/clear_refs``) minus the resident set just before the decode, after a
warm-up decode of the same photo. "max |d|" is the largest pixel difference
from ``pillow`` on the 224x224 uint8 output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tools.processes import ROOT

INPUT_SIZE = (224, 224)
PREPROCESS_MODE = "torch"  # EfficientNet-Lite0's
DEFAULT_ROUNDS = 15

#: (name, format, how to make the bytes) for each photo measured; "JPEG progressive" is a JPEG with the
#: ``imaging`` candidate (the server's path differs from Pillow's there).
PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("camera JPEG 12 MP", "JPEG", "camera_jpeg()"),
    ("camera JPEG 12 MP progressive", "JPEG progressive", "camera_jpeg(progressive=True)"),
    ("chelsea JPEG 451x300", "JPEG", "photo_jpeg()"),
    ("camera PNG 3 MP", "PNG", "camera_png()"),
    ("camera WebP 12 MP", "WEBP", "camera_webp()"),
)


def photo_bytes(expression: str) -> bytes:
    """The bytes of one photo of :data:`PHOTOS`."""
    from tools import camera_photo

    from .plan import photo_jpeg

    calls = {
        "camera_jpeg()": camera_photo.camera_jpeg,
        "camera_jpeg(progressive=True)": lambda: camera_photo.camera_jpeg(progressive=True),
        "photo_jpeg()": photo_jpeg,
        "camera_png()": camera_photo.camera_png,
        "camera_webp()": camera_photo.camera_webp,
    }
    return calls[expression]()


DECODERS = ("pillow", "imaging", "simplejpeg", "turbojpeg")


def candidates(
    image_format: str, turbojpeg_lib: str | None = None, include: tuple[str, ...] = DECODERS
) -> dict[str, Callable[[bytes], np.ndarray]]:
    """Name -> bytes-to-model-input function, for the decoders in ``include`` that can read ``image_format`` here.

    ``image_format`` is a format of :data:`PHOTOS` ("JPEG progressive" is a JPEG).
    """
    from model_backend.imaging import decode_image
    from model_backend.models.preprocessing import PREPROCESSORS

    preprocess = PREPROCESSORS[PREPROCESS_MODE]
    found: dict[str, Callable[[bytes], np.ndarray]] = {
        "pillow": lambda data: preprocess(_with_pillow_only(decode_image, data)),
    }
    if image_format in ("WEBP", "JPEG progressive") and "imaging" in include:
        found["imaging"] = lambda data: preprocess(decode_image(data, INPUT_SIZE))
    if image_format not in ("JPEG", "JPEG progressive"):
        return found
    try:
        import simplejpeg
    except ImportError:
        simplejpeg = None
    if simplejpeg is not None and "simplejpeg" in include:
        def with_simplejpeg(data: bytes) -> np.ndarray:
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
            scale = draft_scale(width, height)  # min_factor with these minimum sides pins the scale to 1/scale
            pixels = simplejpeg.decode_jpeg(
                data, "rgb", min_height=-(-height // scale), min_width=-(-width // scale), min_factor=scale
            )
            return preprocess(_resize(pixels))

        found["simplejpeg"] = with_simplejpeg
    turbo = _load_turbojpeg(turbojpeg_lib) if "turbojpeg" in include else None
    if turbo is not None:
        def with_turbojpeg(data: bytes) -> np.ndarray:
            width, height, _, _ = turbo.decode_header(data)
            factor = (1, draft_scale(width, height))
            return preprocess(_resize(turbo.decode(data, pixel_format=0, scaling_factor=factor)))  # TJPF_RGB

        found["turbojpeg"] = with_turbojpeg
    return found


def _with_pillow_only(decode_image: Callable[..., np.ndarray], data: bytes) -> np.ndarray:
    """``decode_image`` with its libwebp path and progressive-JPEG rewrite off, so that Pillow decodes every pixel
    of every scan (single-threaded bench only)."""
    from model_backend import imaging

    saved = imaging._libwebp, imaging._rewrite_progressive_jpeg
    imaging._libwebp, imaging._rewrite_progressive_jpeg = None, False
    try:
        return decode_image(data, INPUT_SIZE)
    finally:
        imaging._libwebp, imaging._rewrite_progressive_jpeg = saved


def turbojpeg_status(turbojpeg_lib: str | None = None) -> str:
    """'loaded' or why PyTurboJPEG cannot run here."""
    try:
        import turbojpeg
    except ImportError:
        return "PyTurboJPEG is not installed"
    try:
        turbojpeg.TurboJPEG(turbojpeg_lib)
    except (OSError, RuntimeError) as exc:
        return f"PyTurboJPEG cannot load libturbojpeg: {str(exc).splitlines()[0]}"
    return "loaded"


def _load_turbojpeg(turbojpeg_lib: str | None):
    try:
        import turbojpeg

        return turbojpeg.TurboJPEG(turbojpeg_lib)
    except (ImportError, OSError, RuntimeError):
        return None


def draft_scale(width: int, height: int) -> int:
    """The DCT scale denominator Pillow's ``JpegImageFile.draft`` picks for the input size: 8, 4, 2 or 1."""
    scale = min(width // INPUT_SIZE[1], height // INPUT_SIZE[0])
    return next((factor for factor in (8, 4, 2, 1) if scale >= factor), 1)


def _resize(pixels: np.ndarray) -> np.ndarray:
    from PIL import Image

    height, width = INPUT_SIZE
    if pixels.shape[:2] == (height, width):
        return pixels
    image = Image.fromarray(pixels)
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None))


def time_interleaved(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Wall and thread-CPU ms of every call, ``rounds`` times, each round in a rotated order (one warm-up each first).

    The CPU time of the calling thread is what a decode costs whatever else the
    shared machine does; the wall time is what a request waits.
    """
    names = list(calls)
    for name in names:
        calls[name]()
    times = {name: {"wall": [], "cpu": []} for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started, started_cpu = time.perf_counter(), time.thread_time()
            calls[name]()
            times[name]["cpu"].append((time.thread_time() - started_cpu) * 1000.0)
            times[name]["wall"].append((time.perf_counter() - started) * 1000.0)
    return times


_MEMORY_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from model_backend.imaging import release_free_memory
from tools.bench.decoders import candidates

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

path, image_format, name, lib = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] or None
data = open(path, "rb").read()
decode = candidates(image_format, lib)[name]
decode(data)  # warm-up: libraries loaded, first-call allocations made
release_free_memory()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM to the current resident set
before = status("VmRSS")
decode(data)
print(json.dumps({"peak_bytes": status("VmHWM") - before}))
"""


def peak_memory_bytes(path: Path, image_format: str, name: str, turbojpeg_lib: str | None) -> int | None:
    """Resident-set growth of one decode in a fresh child process (None where /proc cannot say)."""
    completed = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(ROOT), str(path), image_format, name, turbojpeg_lib or ""],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    if completed.returncode != 0:
        return None
    return int(json.loads(completed.stdout)["peak_bytes"])


def measure(rounds: int = DEFAULT_ROUNDS, memory: bool = True, turbojpeg_lib: str | None = None) -> dict:
    """Every photo x every candidate: median wall and CPU ms, CPU ratio to pillow, peak MiB and bytes per pixel,
    largest pixel difference from pillow."""
    from PIL import Image
    import io

    rows = []
    with tempfile.TemporaryDirectory(prefix="decoders-") as folder:
        for label, image_format, expression in PHOTOS:
            data = photo_bytes(expression)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
            decoders = candidates(image_format, turbojpeg_lib)
            reference = decoders["pillow"](data)
            calls = {name: (lambda f=function: f(data)) for name, function in decoders.items()}
            times = time_interleaved(calls, rounds)
            path = Path(folder) / f"photo-{len(rows)}"
            path.write_bytes(data)
            pillow_cpu_ms = statistics.median(times["pillow"]["cpu"])
            for name, decode in decoders.items():
                median_ms = statistics.median(times[name]["wall"])
                cpu_ms = statistics.median(times[name]["cpu"])
                output = decode(data)
                difference = float(np.abs(_unpreprocess(output) - _unpreprocess(reference)).max())
                peak = peak_memory_bytes(path, image_format, name, turbojpeg_lib) if memory else None
                rows.append({
                    "photo": label, "format": image_format, "bytes": len(data), "width": width, "height": height,
                    "decoder": name, "median_ms": round(median_ms, 3), "cpu_ms": round(cpu_ms, 3),
                    "cpu_ratio_to_pillow": round(cpu_ms / pillow_cpu_ms, 3),
                    "peak_mib": None if peak is None else round(peak / 2**20, 1),
                    "peak_bytes_per_pixel": None if peak is None else round(peak / (width * height), 2),
                    "max_pixel_difference": round(difference, 2),
                })
    return {
        "rounds": rounds, "input_size": list(INPUT_SIZE), "preprocess": PREPROCESS_MODE,
        "turbojpeg": turbojpeg_status(turbojpeg_lib), "rows": rows,
    }


def _unpreprocess(array: np.ndarray) -> np.ndarray:
    """Torch-mode floats back to 0..255 levels, so that differences read as pixel levels."""
    from model_backend.models.preprocessing import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

    return (array * IMAGENET_STD_RGB + IMAGENET_MEAN_RGB) * 255.0


def format_table(result: dict) -> str:
    """The rows as an aligned text table, with how they were measured."""
    header = ("photo", "size", "decoder", "wall ms", "cpu ms", "cpu x pillow", "peak MiB", "B/px", "max |d|")
    lines = [header]
    for row in result["rows"]:
        peak_mib, per_pixel = row["peak_mib"], row["peak_bytes_per_pixel"]
        lines.append((
            row["photo"], f"{row['bytes'] / 1e6:.2f} MB", row["decoder"], f"{row['median_ms']:.2f}",
            f"{row['cpu_ms']:.2f}", f"{row['cpu_ratio_to_pillow']:.3f}", "-" if peak_mib is None else f"{peak_mib:.1f}",
            "-" if per_pixel is None else f"{per_pixel:.2f}", f"{row['max_pixel_difference']:.1f}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    text.append("")
    height, width = result["input_size"]
    text.append(f"decode to {height}x{width} RGB + '{result['preprocess']}' preprocessing; medians of "
                f"{result['rounds']} interleaved rounds (wall, and CPU of the thread); "
                f"turbojpeg: {result['turbojpeg']}")
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.decoders", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="interleaved rounds per photo (median)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-decode peak-memory children")
    parser.add_argument("--turbojpeg-lib", default=None, help="path of libturbojpeg.so for PyTurboJPEG")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"Expected --rounds to be at least 1. Received: {args.rounds}")
    result = measure(args.rounds, memory=not args.no_memory, turbojpeg_lib=args.turbojpeg_lib)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
