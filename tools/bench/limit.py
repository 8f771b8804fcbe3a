"""Section 1, the limit: what one process reaches in-process, the numbers the service is held to.

Runs in a child process (``python -m tools.bench --limit-only --json``) so that
its TensorFlow runtime is gone before the service is measured: the in-process
request (decode + preprocess + compiled forward at batch 1) on the bench photo,
the forward pass per image at batch sizes 1..32, the pipeline limit
``1 / (decode+preprocess + best-batch forward per image)``, and
decode+preprocess of a 12-megapixel JPEG.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from collections.abc import Callable

from .plan import BATCH_SIZES, Plan, big_photo_jpeg, make_plan, photo_jpeg
from .stats import best_batch, percentile, pipeline_limit_ips

log = logging.getLogger("tools.bench")


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

    from model_backend.imaging import decode_image
    from model_backend.models import build_model
    from model_backend.models.tf_runtime import configure_tensorflow
    from model_backend.settings import ServerSettings

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
    best, best_ms = best_batch(forward)
    decode_p50 = percentile(decode_ms, 50)
    at_max = forward.get(str(serving.max_batch))
    return {
        "model": model.name,
        "setup_s": round(setup_s, 3),
        "runs": plan.limit_runs,
        "request_p50_ms": round(percentile(request_ms, 50), 3),
        "request_p95_ms": round(percentile(request_ms, 95), 3),
        "decode_preprocess_ms": round(decode_p50, 3),
        "decode_preprocess_12mp_ms": round(percentile(decode_big_ms, 50), 3),
        "forward_batch1_ms": round(forward["1"], 3),
        "forward_per_image_ms": {size: round(ms, 3) for size, ms in forward.items()},
        "best_batch": best,
        "best_forward_per_image_ms": round(best_ms, 3),
        "pipeline_limit_ips": round(pipeline_limit_ips(decode_p50, best_ms), 3),
        "service_max_batch": serving.max_batch,
        "pipeline_limit_at_service_max_batch_ips": (
            round(pipeline_limit_ips(decode_p50, at_max), 3) if at_max is not None else None
        ),
        "thread_settings": {"intra_op": serving.intra_op_threads, "inter_op": serving.inter_op_threads},
    }


def limit_main(args: argparse.Namespace) -> int:
    """``--limit-only``: measure and print the result (one JSON line with ``--json``)."""
    from model_backend.settings import model_settings_from
    from model_backend.errors import BackendError

    try:
        results = measure_limit(model_settings_from(args), make_plan(args.quick, args.requests))
    except BackendError as exc:
        log.error("%s", exc.message)
        return 1
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))
    return 0
