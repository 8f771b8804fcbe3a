"""The in-process request in a child process that stays up: side (a) of the bench's paired rounds.

    python -m tools.bench.inprocess --worker [--model NAME] [--weights random]   (started by the bench, not by hand)

The paired stage (:mod:`tools.bench.paired`) measures the in-process request
(decode + preprocess + forward at batch 1, what :mod:`tools.bench.limit` reports
as ``request_p50_ms``) again in every round, next to the service and the HTTP
API. The model runs here, in a clean interpreter, on the backend's own model
object with the backend's defaults (:func:`tools.bench.limit.backend_model`), so
the bench process never imports a model runtime; between rounds the child
waits on its input and costs nothing.

It speaks JSON lines on stdin/stdout (:class:`tools.bench.processes.LineChild`,
as the busy-cores children do; no pickle):

* in: ``{"photo": PATH, "flatbuffer_out": PATH}``; out: ``{"ready": true, "runtime", "runtime_reason",
  "setup_s", "busy": {...} or null}``, where ``busy`` is what the busy-cores children
  (:class:`tools.bench.busy.BusyCores`) need to run the same model: its flatbuffer,
  written to ``flatbuffer_out``, and its preprocessing and limits (null on TensorFlow);
* then, per line ``{"requests": N}``: ``{"latencies_ms": [...]}``, N requests back to back after two untimed ones;
* the end of its input: it exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO

from .processes import LineChild

#: seconds the child may take to import its runtime, load the model and warm up
READY_TIMEOUT_S = 180.0
#: seconds a batch of requests may take on top of a second each
ANSWER_TIMEOUT_S = 60.0


class InProcessRequests:
    """The parent's handle: start the child, then ask it for N timed requests at a time."""

    def __init__(self, model_args: list[str], photo_path: Path, flatbuffer_out: Path, stderr: IO[bytes] | None = None) -> None:
        self.child = LineChild(["-m", "tools.bench.inprocess", "--worker", *model_args], "the in-process request child", stderr)
        try:
            self.child.send({"photo": str(photo_path), "flatbuffer_out": str(flatbuffer_out)})
            self.ready = self.child.expect("ready", READY_TIMEOUT_S)
        except BaseException:
            self.child.stop()
            raise

    @property
    def pid(self) -> int:
        return self.child.pid

    def latencies_ms(self, requests: int) -> list[float]:
        self.child.send({"requests": requests})
        return [float(ms) for ms in self.child.expect("latencies_ms", ANSWER_TIMEOUT_S + requests)["latencies_ms"]]

    def close(self) -> None:
        self.child.stop()

    def __enter__(self) -> InProcessRequests:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def worker_main(args: argparse.Namespace) -> int:
    """Load the backend's model, say ready (writing its flatbuffer for the busy-cores children), then answer until the input ends."""
    from model_backend.errors import BackendError
    from model_backend.settings import model_settings_from

    from .limit import backend_model, request_calls, time_ms

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    spec = json.loads(sys.stdin.readline())
    photo = Path(spec["photo"]).read_bytes()
    started = time.perf_counter()
    try:
        model, serving = backend_model(model_settings_from(args))
    except BackendError as exc:  # said in the log; the parent sees the output end and says so
        logging.getLogger("tools.bench").error("%s", exc.message)
        return 1
    setup_s = time.perf_counter() - started
    runtime = getattr(model, "runtime", "tensorflow")
    _, request = request_calls(model, serving)
    busy = None
    if runtime == "litert":
        Path(spec["flatbuffer_out"]).write_bytes(model._content)
        busy = {"flatbuffer": spec["flatbuffer_out"], "preprocess_mode": model.preprocess_mode, "input_size": list(model.input_size),
                "max_bytes": serving.max_image_bytes, "max_pixels": serving.max_pixels}
    time_ms(lambda: request(photo), runs=3)  # first calls pay allocation and packing
    print(json.dumps({"ready": True, "runtime": runtime, "runtime_reason": getattr(model, "runtime_reason", ""),
                      "setup_s": round(setup_s, 3), "busy": busy}), flush=True)
    for line in sys.stdin:
        times = time_ms(lambda: request(photo), int(json.loads(line)["requests"]))
        print(json.dumps({"latencies_ms": [round(ms, 4) for ms in times]}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.inprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", required=True, help="run as the bench's child (JSON lines on stdin/stdout)")
    parser.add_argument("--model", help="the backend's --model")
    parser.add_argument("--weights", help="the backend's --weights")
    return worker_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
