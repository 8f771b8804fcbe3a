"""Run the monolith (``python -m model_backend.monolith IMAGE --json``) as a subprocess and read its JSON.

This is the baseline the dashboard compares against: a fresh Python process
that imports TensorFlow, builds the model, predicts once and exits. The
dashboard never imports TensorFlow itself; it only starts that process,
reports the elapsed seconds while it runs, and returns the monolith's result
dict (or an ``{"error": {"code", "message"}}`` dict: it never raises).

The model comes from the caller, which takes it from the server's settings
(``DashboardSettings.monolith_model``), never from anything a browser sent.
How many run at once is capped by ``queue.py``; ``pass_fds`` hands
the held slot's descriptor to the subprocess so the slot stays taken until it
exits, and the subprocess is killed whenever this function leaves early.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from ..settings import REPO_ROOT

log = logging.getLogger(__name__)

POLL_S = 0.5


def monolith_command(image_path: Path, model: str | None = None) -> list[str]:
    """The exact command line the dashboard runs."""
    command = [sys.executable, "-m", "model_backend.monolith", str(image_path), "--json"]
    if model:
        command += ["--model", model]
    return command


def run_monolith_on_file(image_path: Path, *, model: str | None = None, timeout_s: float = 180.0,
                         on_progress: Callable[[float], None] | None = None,
                         pass_fds: Sequence[int] = ()) -> tuple[dict, float]:
    """Run the monolith on the image at ``image_path``; return (its JSON or an error dict, wall-clock ms).

    Every run is counted in the Prometheus metrics (``warmserve_monolith_runs_total`` and its duration).
    """
    from ..metrics import registry as metrics  # here, not at import: `python -m dashboard` sets the metrics folder first

    result, wall_ms = _run(image_path, model, timeout_s, on_progress, pass_fds)
    error = result.get("error")
    metrics.record_monolith(not error, error.get("code") if isinstance(error, dict) else None, wall_ms)
    return result, wall_ms


def _run(image_path: Path, model: str | None, timeout_s: float, on_progress: Callable[[float], None] | None,
         pass_fds: Sequence[int]) -> tuple[dict, float]:
    command = monolith_command(image_path, model)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log.info("Running the monolith: %s", " ".join(command))
    started = time.perf_counter()
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env,
                                   pass_fds=tuple(pass_fds))
    except OSError as exc:
        return _error("internal", f"Could not start the monolith: {exc}"), 0.0
    stdout, stderr = b"", b""
    try:
        while True:
            elapsed = time.perf_counter() - started
            if on_progress is not None:
                on_progress(elapsed)
            try:
                stdout, stderr = process.communicate(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                if time.perf_counter() - started > timeout_s:
                    _stop(process)
                    wall_ms = (time.perf_counter() - started) * 1000
                    return _error("timeout", f"The monolith took longer than {timeout_s:.0f} s and was stopped."), wall_ms
    finally:
        if process.poll() is None:  # left early (an exception, a signal): never leave TensorFlow running uncounted
            _stop(process)
    wall_ms = (time.perf_counter() - started) * 1000
    return parse_monolith_output(stdout, stderr, process.returncode), wall_ms


def parse_monolith_output(stdout: bytes, stderr: bytes, returncode: int) -> dict:
    """The monolith prints one JSON object on stdout (exit 0, or exit 2 with an error object)."""
    text = stdout.decode("utf-8", "replace").strip()
    for candidate in (text, *reversed(text.splitlines())):
        try:
            result = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(result, dict) and ("timings_ms" in result or "error" in result):
            return result
    tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
    detail = " / ".join(tail) or "no output"
    log.warning("The monolith exited %s without JSON: %s", returncode, detail)
    return _error("internal", f"The monolith exited with code {returncode} without a result: {detail}")


def _stop(process: subprocess.Popen) -> None:
    process.kill()
    try:
        process.communicate(timeout=10)
    except (subprocess.TimeoutExpired, ValueError, OSError):  # noqa: PERF203 - best effort on the way out
        log.warning("The monolith (pid %s) did not exit after SIGKILL", process.pid)


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
