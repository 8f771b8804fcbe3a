"""The monolith: the old way of serving, kept on purpose as the baseline.

``python -m model_backend.monolith IMAGE`` is one request served the naive
way: a fresh process imports TensorFlow, builds the model and loads its
weights, decodes and preprocesses one image, runs the first (cold) forward
pass and exits. It prints JSON with the stage timings and the predictions,
which are the service's predictions, since the same model code is used:

    {"model": ..., "runtime": "tensorflow", "image": ..., "predictions": [...],
     "timings_ms": {"import": .., "model_load": .., "preprocess": .., "inference": .., "total": ..}}

``total`` counts from the interpreter's start (the process's own start time)
to the end of inference, so it includes Python start-up as a user would feel
it. Errors print ``{"error": {"code", "message"}}`` and exit with status 2.
The monolith knows nothing of the dashboard: recording a run in the history
is the dashboard's job (``python -m dashboard monolith IMAGE``).
"""

from __future__ import annotations

import time

_PROCESS_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def _process_age_ms() -> float:
    """Milliseconds since this process was created (falls back to since this module loaded).

    On Linux from /proc: the system's uptime minus the process's start in clock
    ticks since boot, both precise to about 10 ms. (psutil's create_time adds
    the boot time, which /proc gives in whole seconds: up to 1 s off.)
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as stat, open("/proc/uptime", encoding="ascii") as uptime:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, after the (comm) field
            uptime_s = float(uptime.read().split()[0])
        return max(0.0, (uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000.0)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return (time.time() - psutil.Process(os.getpid()).create_time()) * 1000.0
    except Exception:  # noqa: BLE001 - psutil missing or unsupported
        return (time.perf_counter() - _PROCESS_T0) * 1000.0


def classify_once(image_path: Path, model_args: argparse.Namespace, top_k: int = 5) -> dict:
    """Everything a monolith request does, timed stage by stage."""
    from .imaging import decode_image
    from .protocol import MONOLITH_STAGES
    from .settings import model_settings_from

    startup_ms = _process_age_ms()
    model_settings = model_settings_from(model_args)  # bad flags fail before seconds of TensorFlow
    try:
        data = image_path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(f"Cannot read {image_path}: {exc.strerror}") from None

    started = time.perf_counter()
    from .models.tf_runtime import configure_tensorflow, import_tensorflow

    import_tensorflow()  # the import is the point: it is what the monolith pays per request
    from .models import build_model

    configure_tensorflow(0, 0)
    imported = time.perf_counter()
    model = build_model(model_settings)
    model.setup()
    loaded = time.perf_counter()
    array = model.preprocess(decode_image(data, model.input_size))
    preprocessed = time.perf_counter()
    probabilities = model.predict(array[None])
    inferred = time.perf_counter()

    timings = {
        "startup": startup_ms,
        "import": (imported - started) * 1000.0,
        "model_load": (loaded - imported) * 1000.0,
        "preprocess": (preprocessed - loaded) * 1000.0,
        "inference": (inferred - preprocessed) * 1000.0,
        "total": startup_ms + (inferred - started) * 1000.0,
    }
    return {
        "model": model.name,
        "runtime": "tensorflow",  # the baseline: always TensorFlow, whatever --runtime the service uses
        "image": str(image_path),
        "predictions": model.top_k(probabilities[0], top_k),
        "timings_ms": {name: round(timings[name], 3) for name in MONOLITH_STAGES},
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    from .settings import add_model_arguments

    parser = argparse.ArgumentParser(prog="python -m model_backend.monolith", description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    add_model_arguments(parser)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print compact JSON on one line (default: indented)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from .errors import BackendError
    from .settings import SettingsError

    try:
        result = classify_once(args.image, args, top_k=args.top_k)
    except (BackendError, SettingsError, FileNotFoundError) as exc:
        code = getattr(exc, "code", "bad_request")
        result = {"error": {"code": code, "message": getattr(exc, "message", str(exc))}}
        print(json.dumps(result))
        return 2
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
