"""The benchmark: how close the served model gets to its in-process limit, in one run on one machine.

    python -m model_backend.bench [--model efficientnet-lite0|resnet50] [--weights random] [--quick]
                                  [--out results/] [--requests N] [--skip-monolith] [--skip-http]
                                  [--skip-workers]

In order, so that no measurement runs beside another TensorFlow runtime:

1. The limit, in a child process (``--limit-only --json``) that exits before
   anything else starts: the in-process request (decode + preprocess + compiled
   forward at batch 1) on a real photo (``skimage.data.chelsea()`` as a quality-90
   JPEG), the forward pass per image at batch sizes 1..32, the pipeline limit
   ``1 / (decode+preprocess + best-batch forward per image)``, and
   decode+preprocess of a 12-megapixel JPEG (chelsea upscaled to 4000x3000).
2. The monolith: fresh ``python -m model_backend.monolith IMG --json`` processes,
   timed around the subprocess, with their own stage split.
3. The service: a backend subprocess, the same photo sent through one shared
   :class:`~model_backend.client.BackendClient` by 1, 4, 16 and 32 threads.
4. The dashboard's HTTP API (``POST /api/v1/classify``) at 1 and 16 threads,
   one keep-alive ``http.client`` connection per thread; skipped with a reason if the dashboard
   cannot start.
5. Resident memory of the backend and the dashboard after their load.
6. 1 worker vs 2 workers behind the broker (threads split between them), at concurrency 16 (``--skip-workers`` to leave out).

The machine may be shared: every measurement records how much CPU other
processes took meanwhile (``others_cpu_pct``, a warning above 10 %), and a
disturbed measurement is taken once more (default run) keeping the quieter
try. Each load run also records the CPU time per request of the backend, the
dashboard and the load generator itself.

Then the targets (ratios from this same run, see :mod:`model_backend.bench_report`)
are printed, and ``OUT/bench-<model>.json``, ``.md`` and ``.png`` are written
(process logs go to ``OUT/logs/bench-<model>/``). Needs scikit-image (the photo),
from the test extra: ``pip install -e '.[test]'`` (``./run.sh bench`` has it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import bench_report as report

log = logging.getLogger("model_backend.bench")

ROOT = Path(__file__).resolve().parent.parent
SERVICE_CONCURRENCY = (1, 4, 16, 32)
HTTP_CONCURRENCY = (1, 16)
WORKERS_CONCURRENCY = 16
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
JPEG_QUALITY = 90
BIG_PHOTO_SIZE = (4000, 3000)
START_TIMEOUT_S = 300
REQUEST_TIMEOUT_MS = 60_000
BACKEND_READY = re.compile(r"Backend ready on (\S+)")
DASHBOARD_READY = re.compile(r"Dashboard ready at (http://\S+?)/?(?:\s|$)")
BROKER_READY = re.compile(r"Broker ready on (\S+) \(workers connect to (\S+?)\)")
#: above this share of the machine used by other processes, a measurement is flagged as disturbed
NOISY_PCT = 10.0
MONOLITH_STAGES = ("startup", "import", "model_load", "preprocess", "inference", "total")


class BenchError(RuntimeError):
    """Something the bench needs could not be started or measured; the message says what and where the log is."""


# -- how much to measure -------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Request and repetition counts for a run: the default, or --quick."""

    quick: bool
    requests_c1: int
    requests_concurrent: int
    limit_runs: int
    forward_images: int
    monolith_runs: int
    warmup_requests: int
    #: tries per measurement when other processes disturbed it (the quietest try is kept)
    attempts: int = 1

    def requests_at(self, concurrency: int) -> int:
        return self.requests_c1 if concurrency == 1 else self.requests_concurrent


def make_plan(quick: bool, requests: int | None = None) -> Plan:
    """Default: 200 requests at c=1 and 400 above; --quick: 24 / 48. ``--requests N``: N at c=1, 2N above."""
    base = requests if requests is not None else (24 if quick else 200)
    if base < 1:
        raise ValueError(f"Expected --requests to be at least 1. Received: {base}")
    return Plan(
        quick=quick,
        requests_c1=base,
        requests_concurrent=2 * base,
        limit_runs=12 if quick else 50,
        forward_images=8 if quick else 64,
        monolith_runs=1 if quick else 3,
        warmup_requests=8 if quick else 32,
        attempts=1 if quick else 2,
    )


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


def big_photo_jpeg(size: tuple[int, int] = BIG_PHOTO_SIZE) -> bytes:
    """A 12-megapixel JPEG: chelsea upscaled to 4000x3000, quality 90."""
    from PIL import Image

    return _jpeg(_chelsea().resize(size, Image.Resampling.BICUBIC))


# -- 1. the limit (runs in a child process: python -m model_backend.bench --limit-only --json) --


def _time_ms(call: Callable[[], object], runs: int, warmup: int = 2) -> list[float]:
    """Wall time of ``runs`` calls in ms, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def measure_limit(model_settings, plan: Plan) -> dict:
    """In-process request, forward pass by batch size, pipeline limit, 12-MP decode: the numbers the service is held to."""
    import numpy as np

    from .imaging import decode_image
    from .models import build_model
    from .models.tf_runtime import configure_tensorflow
    from .settings import ServerSettings

    serving = ServerSettings(model=model_settings)  # the backend's defaults: same thread settings as the service
    configure_tensorflow(serving.intra_op_threads, serving.inter_op_threads)
    started = time.perf_counter()
    model = build_model(model_settings)
    model.setup()
    setup_s = time.perf_counter() - started
    photo, big_photo = photo_jpeg(), big_photo_jpeg()

    def decode_preprocess(data: bytes):
        return model.preprocess(decode_image(data, model.input_size))

    decode_ms = _time_ms(lambda: decode_preprocess(photo), plan.limit_runs)
    decode_big_ms = _time_ms(lambda: decode_preprocess(big_photo), plan.limit_runs)
    request_ms = _time_ms(lambda: model.predict(decode_preprocess(photo)[np.newaxis]), plan.limit_runs)
    example = decode_preprocess(photo)
    forward: dict[str, float] = {}
    for size in BATCH_SIZES:
        batch = np.repeat(example[np.newaxis], size, axis=0)
        runs = max(2 if plan.quick else 3, math.ceil(plan.forward_images / size))
        times = _time_ms(lambda: model.predict(batch), runs, warmup=2)
        forward[str(size)] = statistics.median(times) / size
        log.info("forward @%d: %.2f ms per image (%d runs)", size, forward[str(size)], runs)
    best, best_ms = report.best_batch(forward)
    decode_p50 = report.percentile(decode_ms, 50)
    at_max = forward.get(str(serving.max_batch))
    return {
        "model": model.name,
        "setup_s": round(setup_s, 3),
        "runs": plan.limit_runs,
        "request_p50_ms": round(report.percentile(request_ms, 50), 3),
        "request_p95_ms": round(report.percentile(request_ms, 95), 3),
        "decode_preprocess_ms": round(decode_p50, 3),
        "decode_preprocess_12mp_ms": round(report.percentile(decode_big_ms, 50), 3),
        "forward_batch1_ms": round(forward["1"], 3),
        "forward_per_image_ms": {size: round(ms, 3) for size, ms in forward.items()},
        "best_batch": best,
        "best_forward_per_image_ms": round(best_ms, 3),
        "pipeline_limit_ips": round(report.pipeline_limit_ips(decode_p50, best_ms), 3),
        "service_max_batch": serving.max_batch,
        "pipeline_limit_at_service_max_batch_ips": (
            round(report.pipeline_limit_ips(decode_p50, at_max), 3) if at_max is not None else None
        ),
        "thread_settings": {"intra_op": serving.intra_op_threads, "inter_op": serving.inter_op_threads},
    }


def run_limit_child(model_args: Sequence[str], quick: bool, log_dir: Path) -> dict:
    """Measure the limit in a child process, so its TensorFlow runtime is gone before the service runs."""
    command = [sys.executable, "-m", "model_backend.bench", "--limit-only", "--json", *model_args] + (["--quick"] if quick else [])
    log_path = log_dir / "limit.log"
    log.info("The limit: %s (log %s)", " ".join(command[1:]), log_path)
    meter = CpuMeter()
    with open(log_path, "wb") as log_file:
        completed = subprocess.run(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log_file, env=_child_env(), timeout=900, **_popen_options()
        )
    if completed.returncode != 0:
        raise BenchError(f"The in-process limit run failed (exit {completed.returncode}):\n{_tail(log_path)}")
    return {**_last_json_line(completed.stdout.decode("utf-8", "replace"), "the limit run"), **disturbance("the limit", meter)}


def _last_json_line(text: str, what: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"Expected a JSON line from {what}. Received: {text[-500:]!r}")


# -- child processes ------------------------------------------------------------------------


def _child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the bench dies (even by SIGKILL), so no backend is left behind."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _popen_options() -> dict:
    return {"preexec_fn": _die_with_parent} if sys.platform.startswith("linux") else {}


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@dataclass
class Child:
    """A long-running subprocess (backend, dashboard, broker, worker) with its log file."""

    name: str
    process: subprocess.Popen
    log_path: Path
    _log_file: object = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for(self, pattern: re.Pattern, timeout_s: float = START_TIMEOUT_S) -> re.Match:
        """Wait until the log matches ``pattern``; BenchError if the process exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = pattern.search(self.log_path.read_text(errors="replace"))
            if match:
                return match
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.process.returncode} before it was ready:\n{_tail(self.log_path)}")
            time.sleep(0.1)
        raise BenchError(f"{self.name} not ready after {timeout_s:.0f} s (log {self.log_path}):\n{_tail(self.log_path)}")

    def stop(self, timeout_s: float = 20) -> int:
        """SIGTERM, wait, then SIGKILL if needed. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", self.name, timeout_s)
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
        return self.process.returncode


@contextlib.contextmanager
def running(name: str, args: Sequence[str], log_dir: Path) -> Iterator[Child]:
    """Start ``python ARGS`` as ``name`` (log in ``log_dir/name.log``) and stop it on the way out."""
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by Child.stop
    process = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env=_child_env(), **_popen_options()
    )
    child = Child(name, process, log_path, log_file)
    log.info("Started %s (pid %d): %s", name, process.pid, " ".join(args))
    try:
        yield child
    finally:
        code = child.stop()
        if code not in (0, -signal.SIGTERM):
            log.warning("%s exited with %s (log %s)", name, code, log_path)


def memory_mb(pid: int) -> dict:
    """Resident memory of a process and its children (psutil), and the process's peak (VmHWM) where Linux gives it."""
    import psutil

    process = psutil.Process(pid)
    rss = process.memory_info().rss + sum(child.memory_info().rss for child in process.children(recursive=True))
    result = {"rss_mb": round(rss / 2**20, 1)}
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                result["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    return result


class CpuMeter:
    """Share of the machine's CPU used by processes outside the bench's own tree since the meter started,
    and the CPU time of the bench itself and of named processes (backend, dashboard) meanwhile.

    The bench cannot make a shared machine quiet, but it can say how loud it
    was: (all CPU busy time) - (the bench's and its children's CPU time), as a
    percentage of wall time x cores. Steal time (the hypervisor) is reported apart.
    """

    def __init__(self, watch: dict[str, int] | None = None) -> None:
        self._watch = dict(watch or {})
        self._start = self._snapshot()

    def _snapshot(self) -> dict:
        import psutil

        times = psutil.cpu_times()
        own_times = os.times()
        snapshot = {
            "t": time.perf_counter(),
            "busy": sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq")),
            "steal": getattr(times, "steal", 0.0),
            "bench": own_times.user + own_times.system,
            "tree": own_times.user + own_times.system + own_times.children_user + own_times.children_system,
        }
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                cpu = child_times.user + child_times.system
                snapshot["tree"] += cpu + child_times.children_user + child_times.children_system
                for name, pid in self._watch.items():
                    if child.pid == pid:
                        snapshot[name] = cpu
        return snapshot

    def reading(self) -> dict:
        """``others_cpu_pct`` and ``steal_pct`` (percent of all cores), ``cpu_s`` per watched process and the bench."""
        start, end = self._start, self._snapshot()
        capacity = max(1e-9, (end["t"] - start["t"]) * (os.cpu_count() or 1))
        others = max(0.0, (end["busy"] - start["busy"]) - (end["tree"] - start["tree"]))
        cpu_s = {name: round(end[name] - start[name], 4) for name in ("bench", *self._watch) if name in start and name in end}
        return {
            "others_cpu_pct": round(100.0 * others / capacity, 1),
            "steal_pct": round(100.0 * (end["steal"] - start["steal"]) / capacity, 1),
            "cpu_s": cpu_s,
        }


def noisy(label: str, reading: dict, threshold_pct: float = NOISY_PCT) -> dict:
    """Log a warning when other processes used a noticeable share of the machine during a measurement."""
    if reading["others_cpu_pct"] > threshold_pct:
        log.warning("%s: other processes used %.0f%% of the machine's CPU meanwhile; its numbers are disturbed",
                    label, reading["others_cpu_pct"])
    return reading


def disturbance(label: str, meter: CpuMeter) -> dict:
    """Just how much other processes used the machine since ``meter`` started (logged if noticeable)."""
    reading = noisy(label, meter.reading())
    reading.pop("cpu_s", None)
    return reading


def quietest(label: str, measure: Callable[[], dict], attempts: int) -> dict:
    """Run ``measure`` (a dict with ``others_cpu_pct``) again while other processes disturbed it, up to
    ``attempts`` times; keep the least disturbed try and record every try's disturbance."""
    tries: list[dict] = []
    for attempt in range(1, attempts + 1):
        tries.append(measure())
        if tries[-1]["others_cpu_pct"] <= NOISY_PCT:
            break
        if attempt < attempts:
            log.warning("%s: measuring again (try %d of %d)", label, attempt + 1, attempts)
    best = min(tries, key=lambda t: t["others_cpu_pct"])
    if len(tries) > 1:
        best["others_cpu_pct_per_try"] = [t["others_cpu_pct"] for t in tries]
    return best


# -- the load generator -------------------------------------------------------------------------

#: makes one thread's sender: (send() -> reply dict, close())
SenderFactory = Callable[[], tuple[Callable[[], dict], Callable[[], None]]]


@dataclass
class LoadResult:
    """Everything one load run saw: per-request latencies and replies, errors, wall time."""

    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    replies: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_load(make_sender: SenderFactory, concurrency: int, requests: int) -> LoadResult:
    """``requests`` requests from ``concurrency`` threads, each sending its next one as soon as the last is answered."""
    result = LoadResult(concurrency)
    lock = threading.Lock()
    remaining = [requests]
    barrier = threading.Barrier(concurrency + 1)

    def take() -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

    def worker() -> None:
        try:
            send, close = make_sender()
        except Exception as exc:  # noqa: BLE001 - reported by the caller, not a hung barrier
            result.errors.append(f"could not start a sender: {type(exc).__name__}: {exc}")
            barrier.abort()
            return
        try:
            barrier.wait()
            while take():
                started = time.perf_counter()
                try:
                    reply = send()
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    with lock:
                        result.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    continue
                elapsed = (time.perf_counter() - started) * 1000.0
                with lock:
                    result.latencies_ms.append(elapsed)
                    result.replies.append(reply)
        except threading.BrokenBarrierError:
            return
        finally:
            close()

    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        raise BenchError(f"The load generator could not start: {result.errors[0] if result.errors else 'unknown'}") from None
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - started
    return result


def summarize(result: LoadResult) -> dict:
    """Latency percentiles, images/s, batch sizes, the backend's stage medians and the transport overhead."""
    summary = {"concurrency": result.concurrency}
    batch_sizes = [r["batch_size"] for r in result.replies if isinstance(r.get("batch_size"), int)]
    summary.update(report.summarize_load(result.latencies_ms, result.wall_s, batch_sizes, len(result.errors)))
    summary["backend_stages_ms"] = report.median_stages(r.get("timings_ms") or {} for r in result.replies)
    overhead = [
        latency - r["timings_ms"]["total"]
        for latency, r in zip(result.latencies_ms, result.replies)
        if isinstance((r.get("timings_ms") or {}).get("total"), (int, float))
    ]
    if overhead:
        summary["outside_backend_ms"] = round(statistics.median(overhead), 3)
    web_tier = [
        latency - r["roundtrip_ms"]
        for latency, r in zip(result.latencies_ms, result.replies)
        if "backend_roundtrip_ms" in r and isinstance(r.get("roundtrip_ms"), (int, float))
    ]
    if web_tier:  # HTTP replies: time outside the dashboard's own call to the backend
        summary["web_tier_ms"] = round(statistics.median(web_tier), 3)
    if result.errors:
        summary["first_errors"] = sorted(set(result.errors))[:3]
    return summary


def log_run(label: str, summary: dict) -> None:
    log.info(
        "%s c=%d: %d ok, %d errors, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, %.1f images/s, mean batch %s",
        label, summary["concurrency"], summary["requests"], summary["errors"], summary.get("p50_ms", math.nan),
        summary.get("p95_ms", math.nan), summary.get("p99_ms", math.nan), summary.get("images_per_s") or 0.0,
        summary.get("mean_batch_size", "-"),
    )


def zmq_senders(client, photo: bytes) -> SenderFactory:
    """Every thread shares the one client (as the dashboard does); the client pools sockets per call."""
    return lambda: ((lambda: client.classify(photo)), (lambda: None))


def http_senders(url: str, photo: bytes, filename: str = "chelsea.jpg") -> SenderFactory:
    """One keep-alive ``http.client`` connection per thread, a multipart field ``image``.

    Each request gets a fresh multipart boundary, as browsers and HTTP libraries send.
    ``http.client`` rather than ``requests``: it costs the load generator, which shares
    the two cores with the server, about 1 ms less CPU per request.
    """
    import http.client
    import uuid
    from urllib.parse import urlsplit

    parts = urlsplit(url)

    def make():
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_TIMEOUT_MS / 1000)

        def send() -> dict:
            boundary = uuid.uuid4().hex
            head = (
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            body = head + photo + f"\r\n--{boundary}--\r\n".encode()
            try:
                connection.request("POST", parts.path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                connection.close()  # the next request reconnects
                raise
            if response.status != 200:
                raise BenchError(f"HTTP {response.status}: {data[:200]!r}")
            return json.loads(data)

        return send, connection.close

    return make


def warm_up(make_sender: SenderFactory, plan: Plan) -> None:
    """Untimed requests first: connections, sockets and the server's threads get going."""
    result = run_load(make_sender, 4, plan.warmup_requests)
    if result.errors:
        raise BenchError(f"Warm-up requests failed: {result.errors[0]}")


def measure_load(label: str, make_sender: SenderFactory, concurrency: int, requests: int, watch: dict[str, int] | None = None) -> dict:
    """One load run, summarized, with how much other processes disturbed it and the CPU per request of
    the bench (the load generator) and of each watched process."""
    meter = CpuMeter(watch)
    summary = summarize(run_load(make_sender, concurrency, requests))
    reading = noisy(f"{label} c={concurrency}", meter.reading())
    answered = max(1, summary["requests"])
    cpu_per_request = {name: round(1000.0 * seconds / answered, 2) for name, seconds in reading.pop("cpu_s").items()}
    return {**summary, **reading, "cpu_ms_per_request": cpu_per_request}


def measure_levels(label: str, make_sender: SenderFactory, levels: Sequence[int], plan: Plan, watch: dict[str, int] | None = None) -> list[dict]:
    warm_up(make_sender, plan)
    runs = []
    for concurrency in levels:
        requests = plan.requests_at(concurrency)
        summary = quietest(f"{label} c={concurrency}", lambda: measure_load(label, make_sender, concurrency, requests, watch), plan.attempts)
        log_run(label, summary)
        runs.append(summary)
    return runs


# -- 2. the monolith ---------------------------------------------------------------------------


def bench_monolith(model_args: Sequence[str], image_path: Path, runs: int) -> dict:
    """``runs`` fresh monolith processes, timed around the subprocess; median wall time and median stages."""
    walls, stages, top1 = [], [], None
    meter = CpuMeter()
    for index in range(runs):
        command = [sys.executable, "-m", "model_backend.monolith", str(image_path), "--json", *model_args]
        started = time.perf_counter()
        completed = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, env=_child_env(), timeout=600, **_popen_options()
        )
        wall_ms = (time.perf_counter() - started) * 1000.0
        if completed.returncode != 0:
            raise BenchError(f"The monolith failed (exit {completed.returncode}): {completed.stdout[-500:]} {completed.stderr[-1500:]}")
        data = _last_json_line(completed.stdout, "the monolith")
        walls.append(wall_ms)
        stages.append(data["timings_ms"])
        top1 = (data.get("predictions") or [{}])[0]
        log.info("monolith run %d/%d: %.0f ms (%s)", index + 1, runs, wall_ms, data["timings_ms"])
    return {
        "runs": runs,
        "wall_ms": [round(w, 1) for w in walls],
        "median_wall_ms": round(statistics.median(walls), 1),
        "stages_ms": report.median_stages(stages, MONOLITH_STAGES),
        "top1": top1,
        **disturbance("the monolith", meter),
    }


# -- 3. the service and 4. the HTTP API ---------------------------------------------------------


def backend_args(model_args: Sequence[str], *extra: str) -> list[str]:
    return ["-m", "model_backend", "serve", *model_args, "--log-level", "INFO", *extra]


def _client(address: str):
    from .client import BackendClient
    from .settings import ClientSettings

    return BackendClient(ClientSettings(address=address, timeout_ms=REQUEST_TIMEOUT_MS, retries=0))


def bench_service(address: str, photo: bytes, plan: Plan, backend: Child) -> dict:
    with _client(address) as client:
        runs = measure_levels("service", zmq_senders(client, photo), SERVICE_CONCURRENCY, plan, {"backend": backend.pid})
        info = client.info()
    keys = ("max_batch", "max_wait_ms", "queue_size", "decode_threads")
    return {"address": address, "settings": {k: info.get(k) for k in keys}, "runs": runs, **memory_mb(backend.pid)}


def wait_for_health(base_url: str, timeout_s: float = 60) -> None:
    import requests

    deadline, last = time.monotonic() + timeout_s, "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(base_url + "/api/v1/health", timeout=5)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"dashboard not healthy after {timeout_s:.0f} s: {last}")


def bench_http(backend: Child, backend_address: str, photo: bytes, plan: Plan, log_dir: Path, work_dir: Path,
               dashboard_threads: int | None = None) -> dict:
    """Start the dashboard against the backend and load its HTTP API; ``{"skipped": reason}`` if it cannot run."""
    try:
        import requests  # noqa: F401
    except ImportError:
        return {"skipped": "dashboard not available: requests is not installed (pip install requests)"}
    args = ["-m", "dashboard", "serve", "--host", "127.0.0.1", "--port", "0", "--backend", backend_address,
            "--data-dir", str(work_dir / "dashboard-data")]
    if dashboard_threads is not None:
        args += ["--threads", str(dashboard_threads)]
    try:
        with running("dashboard", args, log_dir) as dashboard:
            base_url = dashboard.wait_for(DASHBOARD_READY, timeout_s=120).group(1)
            wait_for_health(base_url)
            watch = {"backend": backend.pid, "dashboard": dashboard.pid}
            runs = measure_levels("HTTP API", http_senders(base_url + "/api/v1/classify", photo), HTTP_CONCURRENCY, plan, watch)
            memory = memory_mb(dashboard.pid)
    except BenchError as exc:
        log.warning("HTTP API skipped: %s", exc)
        return {"skipped": f"dashboard not available: {str(exc).splitlines()[0]}"}
    return {"url": base_url + "/api/v1/classify", "dashboard_threads": dashboard_threads or "default", "runs": runs, **memory}


# -- 6. workers behind the broker ----------------------------------------------------------------


def wait_for_workers(address: str, count: int, children: Sequence[Child], timeout_s: float = START_TIMEOUT_S) -> None:
    from .errors import BackendError

    deadline = time.monotonic() + timeout_s
    with _client(address) as client:
        while time.monotonic() < deadline:
            for child in children:
                if child.process.poll() is not None:
                    raise BenchError(f"{child.name} exited with {child.process.returncode}:\n{_tail(child.log_path)}")
            with contextlib.suppress(BackendError):
                if client.ping().get("workers", 0) >= count:
                    return
            time.sleep(0.5)
    raise BenchError(f"{count} workers did not register with the broker within {timeout_s:.0f} s")


def bench_workers(model_args: Sequence[str], photo: bytes, plan: Plan, log_dir: Path) -> dict:
    """Throughput at c=16 of 1 worker with all cores' intra-op threads vs 2 workers splitting them."""
    cores = os.cpu_count() or 2
    runs = []
    for workers, threads in ((1, cores), (2, max(1, cores // 2))):
        broker_args = ["-m", "model_backend", "broker", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"]
        with contextlib.ExitStack() as stack:
            broker = stack.enter_context(running(f"broker-{workers}w", broker_args, log_dir))
            front, back = broker.wait_for(BROKER_READY, timeout_s=60).groups()
            children = [
                stack.enter_context(running(f"worker-{workers}w-{i}", backend_args(model_args, "--connect", back, "--intra-op-threads", str(threads)), log_dir))
                for i in range(workers)
            ]
            wait_for_workers(front, workers, children)
            with _client(front) as client:
                make_sender = zmq_senders(client, photo)
                warm_up(make_sender, plan)
                label = f"{workers} worker(s) x {threads} threads"
                watch = {f"worker{i}": child.pid for i, child in enumerate(children)}
                summary = quietest(label, lambda: measure_load(label, make_sender, WORKERS_CONCURRENCY, plan.requests_concurrent, watch), plan.attempts)
            log_run(label, summary)
            runs.append({"workers": workers, "intra_op_threads": threads, **summary})
    return {"concurrency": WORKERS_CONCURRENCY, "runs": runs}


# -- the whole run ---------------------------------------------------------------------------------


def model_cli_args(args: argparse.Namespace) -> list[str]:
    out = ["--model", args.model]
    if args.weights:
        out += ["--weights", args.weights]
    return out


def run_header(args: argparse.Namespace, plan: Plan, photo: bytes) -> dict:
    from PIL import Image

    width, height = Image.open(io.BytesIO(photo)).size
    return {
        "schema": 1,
        "command": " ".join(["python -m model_backend.bench", *sys.argv[1:]]),
        "model": args.model,
        "weights": args.weights or "default (pretrained)",
        "timing_only": args.weights == "random",
        "quick": plan.quick,
        "plan": plan.__dict__,
        "photo": {"description": f"skimage.data.chelsea() {width}x{height} JPEG q{JPEG_QUALITY}, {len(photo)} bytes", "bytes": len(photo)},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(terse=True),
            "python": platform.python_version(),
            "loadavg_before": _loadavg(),
        },
    }


def _loadavg() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "?"


def run_bench(args: argparse.Namespace) -> dict:
    """Every section in order; returns the results dict (targets included)."""
    plan = make_plan(args.quick, args.requests)
    out_dir = Path(args.out)
    log_dir = out_dir / "logs" / output_stem(args.model)
    log_dir.mkdir(parents=True, exist_ok=True)
    model_args = model_cli_args(args)
    photo = photo_jpeg()
    results = run_header(args, plan, photo)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warmserve-bench-") as tmp:
        work_dir = Path(tmp)
        photo_path = work_dir / "chelsea-q90.jpg"
        photo_path.write_bytes(photo)
        results["limit"] = quietest("the limit", lambda: run_limit_child(model_args, plan.quick, log_dir), plan.attempts)
        log.info("Limit: request p50 %.2f ms, pipeline limit %.1f images/s (best batch %d)",
                 results["limit"]["request_p50_ms"], results["limit"]["pipeline_limit_ips"], results["limit"]["best_batch"])
        results["monolith"] = {"skipped": "--skip-monolith"} if args.skip_monolith else bench_monolith(model_args, photo_path, plan.monolith_runs)
        with running("backend", backend_args(model_args, "--bind", "tcp://127.0.0.1:*"), log_dir) as backend:
            address = backend.wait_for(BACKEND_READY).group(1)
            results["service"] = bench_service(address, photo, plan, backend)
            results["http"] = {"skipped": "--skip-http"} if args.skip_http else bench_http(backend, address, photo, plan, log_dir, work_dir, args.dashboard_threads)
            results["service"]["rss_after_http_mb"] = memory_mb(backend.pid)["rss_mb"]
    results["workers"] = bench_workers(model_args, photo, plan, log_dir) if not args.skip_workers else {"skipped": "--skip-workers"}
    results["machine"]["loadavg_after"] = _loadavg()
    results["duration_s"] = round(time.perf_counter() - started, 1)
    return results


def output_stem(model: str) -> str:
    """``bench-<model>`` with the model name made safe for a file name (a .keras path becomes its stem)."""
    name = Path(model).stem if model.endswith(".keras") else model
    return "bench-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def write_outputs(results: dict, targets: Sequence[report.Target], out_dir: Path) -> dict[str, Path]:
    stem = out_dir / output_stem(results["model"])
    paths = {"json": stem.with_suffix(".json"), "md": stem.with_suffix(".md"), "png": stem.with_suffix(".png")}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["md"].write_text(report.markdown_report(results, targets))
    report.render_png(results, paths["png"])
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_backend.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0", help="efficientnet-lite0 (default) or resnet50")
    parser.add_argument("--weights", help="'random' for timing-only random weights (resnet50 offline), or a weights file")
    parser.add_argument("--quick", action="store_true", help="few requests and repetitions (a smoke run, about a minute)")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="where bench-<model>.json/.md/.png and logs/ go (default results/)")
    parser.add_argument("--requests", type=int, help="requests at concurrency 1 (twice as many above); default 200, 24 with --quick")
    parser.add_argument("--skip-monolith", action="store_true", help="do not run the monolith")
    parser.add_argument("--skip-http", action="store_true", help="do not start the dashboard / measure the HTTP API")
    parser.add_argument("--dashboard-threads", type=int, help="waitress threads for the dashboard (default: the dashboard's own default)")
    parser.add_argument("--skip-workers", action="store_true", help="do not compare 1 vs 2 workers behind the broker at c=16")
    parser.add_argument("--limit-only", action="store_true", help="only the in-process limit (what the bench runs in a child process)")
    parser.add_argument("--json", action="store_true", help="with --limit-only: print the result as one JSON line")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # SIGTERM unwinds like Ctrl-C, so every child process is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        if args.limit_only:
            return limit_main(args)
        results = run_bench(args)
    except (BenchError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    targets = report.evaluate_targets(results)
    results["targets"] = report.targets_as_dicts(targets)
    paths = write_outputs(results, targets, Path(args.out))
    print(report.console_report(results, targets))
    print("\nWrote " + ", ".join(str(p) for p in paths.values()) + f" in {results['duration_s']:.0f} s")
    return 0


def limit_main(args: argparse.Namespace) -> int:
    from .cli import model_settings_from
    from .errors import BackendError

    try:
        results = measure_limit(model_settings_from(args), make_plan(args.quick, args.requests))
    except BackendError as exc:
        log.error("%s", exc.message)
        return 1
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
