"""What the bench measures and how much: concurrency levels, batch sizes, request counts, the photos, where results go.

Pure settings and inputs: nothing here starts a process or imports TensorFlow.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from tools.processes import ROOT

SERVICE_CONCURRENCY = (1, 4, 16, 32)
HTTP_CONCURRENCY = (1, 16)
#: the second backend, on the TensorFlow runtime (persistent process vs faster runtime)
TF_SERVICE_CONCURRENCY = (1, 16)
WORKERS_CONCURRENCY = 16
#: the service is also loaded at this concurrency through BackendClient from as many threads (as the dashboard calls it)
CLIENT_THREADS_CONCURRENCY = 16
#: the paired rounds' loaded steps (service and HTTP API side by side with the limit, tools/bench/paired.py)
PAIRED_CONCURRENCY = 16
#: the forward-pass table of the limit: batch sizes, each at 1 thread and at all cores
BATCH_SIZES = (1, 2, 4, 8, 16)
JPEG_QUALITY = 90
CAMERA_PHOTO_SIZE = (4000, 3000)
REQUEST_TIMEOUT_MS = 60_000
#: above this share of the machine used by other processes, a measurement is flagged as disturbed
NOISY_PCT = 10.0
#: the committed results (``--update-results``) and the ignored folder a plain run writes to
RESULTS_DIR = ROOT / "results"
LOCAL_RESULTS_DIR = RESULTS_DIR / "local"


class BenchError(RuntimeError):
    """Something the bench needs could not be started or measured; the message says what and where the log is."""


@dataclass(frozen=True)
class Plan:
    """Request and repetition counts for a run: the default, or --quick."""

    quick: bool
    requests_c1: int
    requests_concurrent: int
    limit_runs: int
    #: rounds of the forward table; each round times every (threads, batch) cell on about 8 images, in a rotated order
    forward_rounds: int
    #: interleaved (backend forward, plain interpreter) pairs at batch 1
    forward_pairs: int
    monolith_runs: int
    #: timed backend starts with a cached model, after the first start (which fills the cache)
    start_runs: int
    warmup_requests: int
    #: tries per measurement when other processes disturbed it (the quietest try is kept)
    attempts: int = 1
    #: the limit with every core busy (tools/bench/busy.py): rounds of every config, and each slot's warm-up and counted window
    busy_rounds: int = 1
    busy_warmup_s: float = 0.1
    busy_window_s: float = 0.5
    #: the paired rounds (tools/bench/paired.py): how many, and each step's requests at c=1 and at c=16
    #: (the limit's step is one busy-cores window of busy_warmup_s + busy_window_s)
    paired_rounds: int = 2
    paired_requests_c1: int = 12
    paired_requests_concurrent: int = 32

    def requests_at(self, concurrency: int) -> int:
        return self.requests_c1 if concurrency == 1 else self.requests_concurrent


def make_plan(quick: bool, requests: int | None = None) -> Plan:
    """Default: 200 requests at c=1 and 400 above; --quick: 24 / 48. ``--requests N``: N at c=1, 2N above (the sections;
    the paired rounds keep their own counts: 5 rounds of 100 at c=1 and 400 at c=16, --quick 2 rounds of 12 and 32)."""
    base = requests if requests is not None else (24 if quick else 200)
    if base < 1:
        raise ValueError(f"Expected --requests to be at least 1. Received: {base}")
    return Plan(
        quick=quick,
        requests_c1=base,
        requests_concurrent=2 * base,
        limit_runs=12 if quick else 100,
        forward_rounds=2 if quick else 12,
        forward_pairs=30 if quick else 300,
        monolith_runs=1 if quick else 3,
        start_runs=1 if quick else 3,
        warmup_requests=8 if quick else 32,
        attempts=1 if quick else 2,
        busy_rounds=1 if quick else 3,
        busy_warmup_s=0.1 if quick else 0.25,
        busy_window_s=0.5 if quick else 1.5,
        paired_rounds=2 if quick else 5,
        paired_requests_c1=12 if quick else 100,
        paired_requests_concurrent=32 if quick else 400,
    )


def output_stem(model: str) -> str:
    """``bench-<model>`` with the model name made safe for a file name (a .keras path becomes its stem)."""
    name = Path(model).stem if model.endswith(".keras") else model
    return "bench-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


# -- the photos ------------------------------------------------------------------------


def _jpeg(image, quality: int = JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _chelsea():
    try:
        from skimage import data
    except ImportError:
        raise BenchError("The bench photographs come from scikit-image; install it with: pip install scikit-image") from None
    from PIL import Image

    return Image.fromarray(data.chelsea())


def photo_jpeg() -> bytes:
    """The bench photo: ``skimage.data.chelsea()`` (451x300) as a quality-90 JPEG."""
    return _jpeg(_chelsea())


def photo_png() -> bytes:
    """The chelsea PNG that scikit-image ships (451x300, about 240 KB): issue 9's absolute aims are for it over HTTP."""
    _chelsea()  # the same clear error where scikit-image is missing
    from skimage import data

    path = Path(data.__file__).with_name("chelsea.png")
    if path.is_file():
        return path.read_bytes()
    buffer = io.BytesIO()
    _chelsea().save(buffer, format="PNG")
    return buffer.getvalue()


def camera_photo_jpeg(size: tuple[int, int] = CAMERA_PHOTO_SIZE) -> bytes:
    """A 12-megapixel camera-like JPEG (:func:`tools.camera_photo.camera_jpeg`: a real encoder, 3-5 MB, not an upscale)."""
    from tools.camera_photo import camera_jpeg

    return camera_jpeg(size)
