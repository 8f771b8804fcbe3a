"""Child processes for the tools and the tests: start ``python ARGS`` with a log file, wait for its ready line, stop it.

One copy of what the bench, ``tools.fault_run`` and the tests' fixtures all do
with a backend, broker, worker or dashboard subprocess:

* :func:`start` runs ``python ARGS`` from the repository root, stdout and
  stderr into one log file, and (on Linux) asks the kernel to send the child
  SIGTERM if its parent dies, even by SIGKILL, so no backend is left behind;
* :meth:`Child.wait_for` polls the log for a ready pattern and raises
  :class:`ProcessError` (with the log's tail) if the child exits first or time
  runs out;
* :meth:`Child.stop` sends SIGTERM, waits, then SIGKILL; :func:`running` does
  start and stop as a context manager.

Nothing here imports the project's packages (it only knows their command lines
and ready lines); the served packages never import it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger("tools.processes")

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.1
PR_SET_PDEATHSIG = 1
#: the ready lines the project's processes log (backend or worker, dashboard, broker)
BACKEND_READY = re.compile(r"Backend ready on (\S+)")
DASHBOARD_READY = re.compile(r"Dashboard ready at (http://\S+?)/?(?:\s|$)")
BROKER_READY = re.compile(r"Broker ready on (\S+) \(workers connect to (\S+?)\)")


class ProcessError(RuntimeError):
    """A child process did not start, exited early or never logged its ready line; the message has its log's tail."""


def tool_env() -> dict[str, str]:
    """This environment, with TensorFlow's C++ logging quiet (unless set) and unbuffered Python output."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def backend_args(model_args: Sequence[str], *extra: str) -> list[str]:
    """``-m model_backend serve MODEL_ARGS --log-level INFO EXTRA`` (the backend logs its ready line at INFO)."""
    return ["-m", "model_backend", "serve", *model_args, "--log-level", "INFO", *extra]


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent thread dies (prctl PR_SET_PDEATHSIG; Linux only)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def popen_options() -> dict:
    """Keyword arguments for :class:`subprocess.Popen` / :func:`subprocess.run` that tie a child to this process."""
    return {"preexec_fn": die_with_parent} if sys.platform.startswith("linux") else {}


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file, or ``(no log)``."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@dataclass
class Child:
    """A long-running ``python`` subprocess (backend, dashboard, broker, worker) with its log file."""

    name: str
    process: subprocess.Popen
    log_path: Path
    _log_file: IO[bytes] | None = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: re.Pattern | str, timeout_s: float = START_TIMEOUT_S, poll_s: float = POLL_S) -> re.Match:
        """Wait until the log matches ``pattern``; ProcessError if the process exits or time runs out."""
        pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = pattern.search(self.log_text())
            if match:
                return match
            if self.process.poll() is not None:
                raise ProcessError(f"{self.name} exited with {self.process.returncode} before it was ready:\n{tail(self.log_path)}")
            time.sleep(poll_s)
        raise ProcessError(f"{self.name} not ready after {timeout_s:.0f} s (log {self.log_path}):\n{tail(self.log_path)}")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait, then SIGKILL if needed; close the log. Returns the exit code."""
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
            self._log_file = None
        return self.process.returncode

    def kill(self) -> int:
        """SIGKILL at once (no goodbye), wait, close the log. Returns the exit code."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        return self.stop()


def start(name: str, args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> Child:
    """Start ``python ARGS`` as ``name``, stdout and stderr into ``log_path`` (environment: ``env`` or this one's)."""
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by Child.stop
    try:
        process = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env), **popen_options(),
        )
    except OSError:
        log_file.close()
        raise
    log.info("Started %s (pid %d): %s", name, process.pid, " ".join(args))
    return Child(name, process, log_path, log_file)


@contextlib.contextmanager
def running(name: str, args: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[Child]:
    """Start ``python ARGS`` as ``name`` (log in ``log_dir/name.log``) and stop it on the way out."""
    child = start(name, args, log_dir / f"{name}.log", env)
    try:
        yield child
    finally:
        code = child.stop()
        if code not in (0, -signal.SIGTERM):
            log.warning("%s exited with %s (log %s)", name, code, child.log_path)
