"""Serving the dashboard with waitress: connection limits, a fast lane for health, and a prompt SIGTERM.

- Connection limits (settings): ``connection_limit`` open connections,
  idle ones closed after ``channel_timeout_s`` (checked every
  ``cleanup_interval_s``), poll() instead of select() (no 1024-descriptor
  ceiling), and a request body cap (waitress buffers a body before the app
  sees it; the guard's own limits are lower). Idle or half-sent connections
  (slowloris) cost a socket each, never a thread: waitress only hands a
  request to a thread once it has fully arrived. Sockets are read
  ``RECV_BYTES`` at a time (a photo in one or two reads).
- The guard's header checks run as soon as a request's headers have arrived
  (``GuardedChannel``), on the I/O thread: a request without valid credentials
  (missing or malformed, or a wrong password already seen), with a foreign
  Host or Origin, or declaring a body over its limit is answered at once and
  its body is never read or buffered. (Passwords that need hashing are checked
  on a request thread, by the guard middleware, before the app reads the body.)
- A fast lane: GET /api/v1/health runs on its own small thread pool, so it
  answers from the status poller's state even when every request thread is
  busy (e.g. waiting on a dead backend).
- A request thread that has sent its whole answer does not wake the I/O
  thread (``quiet_channel.py``: the server reads ahead one request per
  connection, ``channel_request_lookahead``, so the I/O thread keeps watching
  the socket; about a quarter less CPU per API request at 16 connections).
- waitress's "Task queue depth is N" warning (one per request that waits for a
  thread) is folded to one line per ``QUEUE_LOG_PERIOD_S`` (``QueueDepthLog``).
- Shutdown: SIGTERM or SIGINT stops accepting, gives running requests a
  moment, stops the status poller, drains the history writer's queue
  (``app.stop_app``: every answered request keeps its row), ends every child process (background
  callback jobs and the monolith runs they started), and exits 0, within
  ``STOP_BUDGET_S`` whatever is running; a watchdog forces the exit if
  anything hangs.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import threading
import time
from typing import Callable

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server
from waitress.task import ThreadedTaskDispatcher
from waitress.utilities import Error

from ..settings import DashboardSettings
from .guard import Guard, refusal_response
from .quiet_channel import LOOKAHEAD, QuietChannel, quiet_triggers

log = logging.getLogger(__name__)

FAST_PATHS = frozenset({"/api/v1/health"})
FAST_THREADS = 2
#: descriptors kept for files, SQLite, ZeroMQ and the listening socket on top of the connection limit
SPARE_FDS = 256
#: SIGTERM to exit, at most (the issue's bound is 2 s)
STOP_BUDGET_S = 1.6
#: how long running requests get to finish after a stop signal
DRAIN_S = 0.4
#: waitress's "Task queue depth" warning: at most one a period (it fires for every request that waits for a thread)
QUEUE_LOG_PERIOD_S = 10.0
#: bytes read from a socket at once (waitress reads 8 KB): a photo arrives in one or two reads, not one turn of the
#: poll loop per 8 KB (each turn asks every open connection whether it is readable and writable); about 10 % less
#: CPU on the I/O thread, interleaved A/B
RECV_BYTES = 256 * 1024


class QueueDepthLog:
    """Stands in for waitress's ``waitress.queue`` logger, which warns "Task queue depth is N" on the I/O thread for
    every request that has to wait for a worker thread: under a steady load above ``--threads`` that was a log
    record and a write to stderr per request. This writes the first warning of a period and folds the rest into
    the next one (how many, and the deepest queue seen). waitress calls it under its dispatcher's lock."""

    def __init__(self, logger: logging.Logger | None = None, period_s: float = QUEUE_LOG_PERIOD_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger if logger is not None else logging.getLogger("waitress.queue")
        self.period_s = period_s
        self.clock = clock
        self.last: float | None = None
        self.folded = 0
        self.deepest = 0

    def warning(self, message: str, *args) -> None:
        depth = args[0] if args and isinstance(args[0], int) else 0
        self.deepest = max(self.deepest, depth)
        now = self.clock()
        if self.last is not None and now - self.last < self.period_s:
            self.folded += 1
            return
        if self.folded:
            self.logger.warning("Task queue depth is %d (%d more requests waited for a worker thread in the last %.0f s, "
                                "deepest queue %d; see --threads)", depth, self.folded, now - self.last, self.deepest)
        else:
            self.logger.warning(message, *args)
        self.last, self.folded, self.deepest = now, 0, 0


class FastLaneDispatcher(ThreadedTaskDispatcher):
    """waitress's thread pool, plus a small second pool for cheap GETs (health) so they never queue behind work."""

    def __init__(self, threads: int, fast_paths: frozenset[str] = FAST_PATHS, fast_threads: int = FAST_THREADS,
                 drain_s: float = DRAIN_S) -> None:
        super().__init__()
        self.set_thread_count(threads)
        self.fast = ThreadedTaskDispatcher()
        self.fast.set_thread_count(fast_threads)
        self.fast_paths = fast_paths
        self.drain_s = drain_s
        self.queue_logger = QueueDepthLog()
        self.fast.queue_logger = QueueDepthLog()

    def add_task(self, task) -> None:
        try:
            request = task.requests[0]
            fast = request.error is None and request.command in ("GET", "HEAD") and request.path in self.fast_paths
        except (AttributeError, IndexError):
            fast = False
        (self.fast if fast else super()).add_task(task)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        # waitress waits 5 s for busy threads; a stop must not (they are daemon threads)
        self.fast.shutdown(cancel_pending, min(timeout, self.drain_s / 2))
        return super().shutdown(cancel_pending, min(timeout, self.drain_s))


class EarlyRefusal(Error):
    """A waitress error response carrying the guard's refusal (status, headers and body)."""

    def __init__(self, status_line: str, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(body)
        self.code = int(status_line.split()[0])
        self.reason = status_line.partition(" ")[2]
        self.status_line, self.headers = status_line, headers

    def to_response(self, ident=None):
        return self.status_line, list(self.headers), self.body


def guarded_channel(guard: Guard) -> type[HTTPChannel]:
    """A waitress channel class whose parser asks ``guard`` about each request once its headers are in."""

    class GuardedParser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            environ = {"REQUEST_METHOD": self.command, "PATH_INFO": self.path, "wsgi.url_scheme": self.url_scheme}
            for key, value in self.headers.items():
                environ[key if key in ("CONTENT_LENGTH", "CONTENT_TYPE") else "HTTP_" + key] = value
            refusal = guard.refusal(environ, cheap=True)
            if refusal is None:
                return
            status_line, headers, body = refusal_response(self.path, refusal.status, refusal.code, refusal.message,
                                                          list(refusal.headers))
            self.error = EarlyRefusal(status_line, headers, body)
            # the request ends here: no 100-continue, no body read or buffered (the connection then closes)
            self.body_rcv = None
            self.content_length = 0
            self.chunked = False
            self.expect_continue = False

    class GuardedChannel(QuietChannel):
        parser_class = GuardedParser

    return GuardedChannel


def waitress_options(settings: DashboardSettings, request_limit: int) -> dict:
    """The waitress adjustments these settings imply."""
    return {
        "host": settings.host,
        "port": settings.port,
        "ident": "warmserve-dashboard",
        "connection_limit": settings.connection_limit,
        "channel_timeout": settings.channel_timeout_s,
        "cleanup_interval": settings.cleanup_interval_s,
        "asyncore_use_poll": True,
        "asyncore_loop_timeout": 1,
        "recv_bytes": RECV_BYTES,
        "channel_request_lookahead": LOOKAHEAD,  # see quiet_channel.py
        # waitress refuses (413) a declared body over this before buffering it
        "max_request_body_size": max(settings.callback_body_limit, request_limit) + 1,
    }


def make_server(wsgi_app: Callable, settings: DashboardSettings, request_limit: int, guard: Guard | None = None):
    """A waitress server for ``wsgi_app`` with these settings (not yet running); ``guard`` checks headers early."""
    raise_fd_limit(settings.connection_limit + SPARE_FDS)
    dispatcher = FastLaneDispatcher(settings.threads)
    server = create_server(wsgi_app, _dispatcher=dispatcher, **waitress_options(settings, request_limit))
    channel_class = guarded_channel(guard) if guard is not None else QuietChannel
    for listener in listening_servers(server):
        listener.channel_class = channel_class
        quiet_triggers(listener)
    return server


def listening_servers(server) -> list[BaseWSGIServer]:
    """The waitress servers that accept connections: ``server`` itself, or each socket's when it listens on several."""
    if isinstance(server, MultiSocketServer):
        return [each for each in server.map.values() if isinstance(each, BaseWSGIServer)]
    return [server]


def raise_fd_limit(wanted: int) -> None:
    """Lift the soft open-files limit towards ``wanted`` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # pragma: no cover - platform refuses
            log.warning("Could not raise the open-files limit to %d: %s", target, exc)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("Open-files limit %d is below connection_limit + %d; lower --connection-limit", soft, SPARE_FDS)


class Stopper:
    """Turns SIGTERM/SIGINT into a prompt, clean stop of the waitress loop, with a watchdog as a last resort."""

    def __init__(self, budget_s: float = STOP_BUDGET_S) -> None:
        self.budget_s = budget_s
        self.signalled = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        if self.signalled.is_set():
            return
        self.signalled.set()
        log.info("Stopping (%s)", signal.Signals(signum).name)
        threading.Thread(target=self._watchdog, name="warmserve-stop-watchdog", daemon=True).start()
        raise SystemExit(0)  # waitress's loop catches it and shuts its threads down

    def _watchdog(self) -> None:
        threading.Event().wait(self.budget_s)
        log.warning("Still stopping after %.1f s; exiting now", self.budget_s)
        end_children(0.0)
        self.exit_now()

    @staticmethod
    def exit_now(code: int = 0) -> None:
        """Flush logs and streams and end the process at once. After an orderly stop, what is left is only
        daemon request threads waiting on the backend (and ZeroMQ's context waiting for their sockets):
        nothing that holds data (``stop_app`` has drained the history writer's queue, and a row submitted
        after that is written directly, in its own committed transaction)."""
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def end_children(grace_s: float = 0.3) -> int:
    """Terminate every descendant process (background jobs, monolith runs), then kill what is left; return the count."""
    import psutil

    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    if alive:
        psutil.wait_procs(alive, timeout=0.2)
    return len(children)
