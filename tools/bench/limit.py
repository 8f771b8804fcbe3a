"""Section 1, the limit: what this machine reaches in one process, the numbers the service is held to.

Runs in a child process (``python -m tools.bench --limit-only --json``) so that
its runtime is gone before the service is measured. The model object is the
backend's own: :func:`model_backend.models.runtimes.load_classifier` with the
backend's default settings (LiteRT when the cached conversion verifies), so
the limit runs on the runtime the service runs on. It measures:

* the in-process request (decode + preprocess + forward at batch 1) on the bench photo;
* decode + preprocess of the bench photo and of a 12-megapixel camera JPEG;
* the backend's forward pass at batch 1 against a plain LiteRT interpreter
  (``Interpreter(model_content=<the same flatbuffer>, num_threads=all cores)``),
  timed interleaved, call by call;
* the forward pass per image for threads in {1, all cores} x batch sizes
  (plain interpreters on the same flatbuffer, the cells timed interleaved; the
  TensorFlow runtime can only be asked at all cores), and from it the arithmetic pipeline limit;
* the pipeline limit measured with every core busy (LiteRT only): one child process per
  core decoding and forwarding side by side (:mod:`tools.bench.busy`), the limit the service is
  held to (:data:`~tools.bench.stats.PIPELINE_LIMIT_DEFINITION`).
"""

from __future__ import annotations

import argparse
import json
import functools
import logging
import statistics
import time
from collections.abc import Callable, Sequence

from .plan import BATCH_SIZES, Plan, camera_photo_jpeg, make_plan, photo_jpeg
from .stats import PIPELINE_LIMIT_DEFINITION, best_batch, best_forward, core_ms_per_image, percentile, pipeline_limit_ips

log = logging.getLogger("tools.bench")


def time_ms(call: Callable[[], object], runs: int, warmup: int = 2) -> list[float]:
    """Wall time of ``runs`` calls in ms, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def interleaved_ms(first: Callable[[], object], second: Callable[[], object], pairs: int, warmup: int = 3) -> tuple[list[float], list[float]]:
    """Wall times (ms) of ``first`` and ``second`` called alternately, the order swapped every pair, so
    that whatever else the machine does falls on both alike."""
    for _ in range(warmup):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    calls = ((0, first), (1, second))
    for index in range(pairs):
        for slot, call in calls if index % 2 == 0 else calls[::-1]:
            started = time.perf_counter()
            call()
            times[slot].append((time.perf_counter() - started) * 1000.0)
    return times


class PlainInterpreter:
    """A bare ``ai_edge_litert`` interpreter on a flatbuffer: set_tensor, invoke, get_tensor, nothing else."""

    def __init__(self, content: bytes, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=content, num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = int(self._interpreter.get_input_details()[0]["shape"][0])

    def resize(self, batch: int) -> None:
        if batch != self._batch:
            shape = list(self._interpreter.get_input_details()[0]["shape"])
            self._interpreter.resize_tensor_input(self._input, [batch, *shape[1:]], strict=False)
            self._interpreter.allocate_tensors()
            self._batch = batch

    def run(self, batch) -> object:
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)


def forward_vs_plain(model, example, pairs: int, cores: int) -> dict:
    """The backend model's ``predict`` at batch 1 against a plain interpreter on its flatbuffer, interleaved."""
    import numpy as np

    batch = np.ascontiguousarray(example[np.newaxis], dtype=np.float32)
    plain = PlainInterpreter(model._content, cores)
    backend_ms, plain_ms = interleaved_ms(lambda: model.predict(batch), lambda: plain.run(batch), pairs)
    backend_p50, plain_p50 = statistics.median(backend_ms), statistics.median(plain_ms)
    return {
        "backend_ms": round(backend_p50, 3),
        "plain_ms": round(plain_p50, 3),
        "ratio": round(backend_p50 / plain_p50, 4),
        "pairs": pairs,
        "backend_threads": getattr(model, "num_threads", None),
        "plain_threads": cores,
    }


#: images each (threads, batch) cell runs per round of the forward table (at least one call)
IMAGES_PER_CELL_ROUND = 8


def forward_table(model, runtime: str, example, plan: Plan, cores: int) -> list[dict]:
    """Forward wall ms per image for each (threads, batch): plain interpreters on LiteRT (one per cell, so no
    resizing between calls), the model itself on TensorFlow (all cores only).

    The cells are timed interleaved: every round runs each cell on about
    :data:`IMAGES_PER_CELL_ROUND` images, starting at a rotated cell, so a burst
    of other processes' work falls on all cells alike; each cell's figure is the
    median over its calls.
    """
    import numpy as np

    thread_counts = sorted({1, cores}) if runtime == "litert" else [cores]
    cells: list[tuple[int, int, Callable[[], object]]] = []
    for threads in thread_counts:
        for size in BATCH_SIZES:
            batch = np.ascontiguousarray(np.repeat(example[np.newaxis], size, axis=0), dtype=np.float32)
            if runtime == "litert":
                engine = PlainInterpreter(model._content, threads)
                engine.resize(size)
                cells.append((threads, size, functools.partial(engine.run, batch)))
            else:
                cells.append((threads, size, functools.partial(model.predict, batch)))
    for _, _, call in cells:  # warm-up: first invocations pay allocation and packing
        call()
        call()
    per_image: list[list[float]] = [[] for _ in cells]
    for round_index in range(plan.forward_rounds):
        for offset in range(len(cells)):
            index = (round_index + offset) % len(cells)
            _, size, call = cells[index]
            for _ in range(max(1, IMAGES_PER_CELL_ROUND // size)):
                started = time.perf_counter()
                call()
                per_image[index].append((time.perf_counter() - started) * 1000.0 / size)
    table = []
    for (threads, size, _), times in zip(cells, per_image):
        table.append({"threads": threads, "batch": size, "ms_per_image": round(statistics.median(times), 3), "calls": len(times)})
        log.info("forward t=%d b=%d: %.2f ms per image (%d calls)", threads, size, statistics.median(times), len(times))
    return table


def busy_limit(model, runtime: str, photo: bytes, serving, cores: int, table: Sequence[dict], plan: Plan) -> dict:
    """The pipeline limit measured with every core busy (:mod:`tools.bench.busy`) at the 1-thread batch of the forward
    ``table`` with the fewest ms per image, or why it was not (LiteRT only: TensorFlow's table has no 1-thread rows)."""
    if runtime != "litert":
        return {"skipped": f"the backend's model runs on {runtime}: no flatbuffer for plain interpreters"}
    from .busy import measure_busy_limit

    batch = best_batch(table)

    try:
        return measure_busy_limit(model._content, photo, preprocess_mode=model.preprocess_mode, input_size=model.input_size,
                                  max_bytes=serving.max_image_bytes, max_pixels=serving.max_pixels, cores=cores, best_batch=batch,
                                  rounds=plan.busy_rounds, warmup_s=plan.busy_warmup_s, window_s=plan.busy_window_s)
    except (RuntimeError, OSError, ValueError) as exc:  # the rest of the limit stands; the target falls back to the arithmetic one
        log.error("The busy-cores limit failed: %s", exc)
        return {"skipped": f"the busy-cores children failed: {str(exc)[:300]}"}


def camera_decode(decode_preprocess: Callable[[bytes], object], runs: int) -> dict:
    """Decode + preprocess of the 12-MP camera JPEG, or why it could not be made."""
    try:
        photo = camera_photo_jpeg()
    except ImportError as exc:
        return {"skipped": f"no camera photo ({exc})"}
    times = time_ms(lambda: decode_preprocess(photo), runs)
    return {"bytes": len(photo), "p50_ms": round(percentile(times, 50), 3), "p95_ms": round(percentile(times, 95), 3), "runs": runs}


def backend_model(model_settings):
    """The backend's own model object (``load_classifier``) with the backend's default settings (the same threads and
    limits as the service), and those settings."""
    from model_backend.models.runtimes import load_classifier
    from model_backend.settings import ServerSettings

    serving = ServerSettings(model=model_settings)
    return load_classifier(model_settings, serving.intra_op_threads, serving.inter_op_threads), serving


def request_calls(model, serving) -> tuple[Callable[[bytes], object], Callable[[bytes], object]]:
    """``decode_preprocess(data)`` and ``request(data)`` (decode + preprocess + forward at batch 1): the in-process request."""
    import numpy as np

    from model_backend.imaging import decode_image

    def decode_preprocess(data: bytes):
        return model.preprocess(decode_image(data, model.input_size, max_bytes=serving.max_image_bytes, max_pixels=serving.max_pixels))

    def request(data: bytes):
        return model.predict(decode_preprocess(data)[np.newaxis])

    return decode_preprocess, request


def measure_limit(model_settings, plan: Plan) -> dict:
    """Everything the service is held to, measured on the backend's own model object."""
    import numpy as np

    from model_backend.models.litert_runtime import cpu_count

    cores = cpu_count()
    started = time.perf_counter()
    model, serving = backend_model(model_settings)
    setup_s = time.perf_counter() - started
    runtime = getattr(model, "runtime", "tensorflow")
    photo = photo_jpeg()
    decode_preprocess, request = request_calls(model, serving)
    decode_ms = time_ms(lambda: decode_preprocess(photo), plan.limit_runs)
    request_ms = time_ms(lambda: request(photo), plan.limit_runs)
    camera = camera_decode(decode_preprocess, plan.limit_runs)
    example = decode_preprocess(photo)
    if runtime == "litert":
        versus_plain = forward_vs_plain(model, example, plan.forward_pairs, cores)
        forward1 = versus_plain["backend_ms"]
    else:
        versus_plain = {"skipped": f"the backend's model runs on {runtime} ({getattr(model, 'runtime_reason', '')})"}
        forward1 = statistics.median(time_ms(lambda: model.predict(example[np.newaxis]), plan.limit_runs))
    table = forward_table(model, runtime, example, plan, cores)
    best = best_forward(table)
    decode_p50 = percentile(decode_ms, 50)
    busy = busy_limit(model, runtime, photo, serving, cores, table, plan)
    return {
        "model": model.name,
        "runtime": runtime,
        "runtime_reason": getattr(model, "runtime_reason", ""),
        "setup_s": round(setup_s, 3),
        "cores": cores,
        "runs": plan.limit_runs,
        "request_p50_ms": round(percentile(request_ms, 50), 3),
        "request_p95_ms": round(percentile(request_ms, 95), 3),
        "decode_preprocess_ms": round(decode_p50, 3),
        "camera_decode": camera,
        "forward_batch1_ms": round(forward1, 3),
        "forward_vs_plain": versus_plain,
        "forward_table": table,
        "best_forward": {**best, "core_ms_per_image": round(core_ms_per_image(best), 3)},
        "pipeline_limit_ips": round(pipeline_limit_ips(decode_p50, core_ms_per_image(best), cores), 3),
        "busy_limit": busy,
        "pipeline_limit_definition": PIPELINE_LIMIT_DEFINITION,
        "thread_settings": {"intra_op": serving.intra_op_threads, "inter_op": serving.inter_op_threads},
    }


def limit_main(args: argparse.Namespace) -> int:
    """``--limit-only``: measure and print the result (one JSON line with ``--json``)."""
    from model_backend.errors import BackendError
    from model_backend.settings import model_settings_from

    try:
        results = measure_limit(model_settings_from(args), make_plan(args.quick, args.requests))
    except BackendError as exc:
        log.error("%s", exc.message)
        return 1
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))
    return 0
