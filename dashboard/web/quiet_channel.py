"""A waitress connection whose request thread, once it has sent the whole answer, does not wake the I/O thread.

Why: waitress's I/O thread stops reading a connection while one of its
requests is being served, so every request thread ends by waking it (a byte
on the server's trigger pipe) just to watch that socket again; the I/O thread
then wakes, re-asks every open connection whether it is readable or writable,
and sleeps again. At 16 connections that was about a quarter of the
dashboard's CPU per ``POST /api/v1/classify`` (interleaved A/B, 6 rounds).

Here the server runs with ``channel_request_lookahead = 1`` (:data:`LOOKAHEAD`):
the I/O thread keeps watching a connection while one request of it is being
served, so a request thread that has written its whole answer (waitress sends
it from that thread) leaves the I/O thread asleep when nothing changed for
it: no request waiting on the connection, nothing left to send, no close
pending. In every other case it wakes it, as before. Two details keep what a
client sees the same as without the lookahead:

- A client that half-closes after its request (``shutdown(SHUT_WR)``) still
  gets its answer: the end of its stream, read while the request is served,
  stops reading, and the connection is closed once the answer is out
  (waitress would close it at once).
- Bytes that a request thread is sending right now are not the I/O thread's
  to send, so they do not make the connection "writable" to it (it would
  spin on an always-writable socket until the sender has counted them).
"""

from __future__ import annotations

import threading
import time

from waitress import wasyncore
from waitress.channel import HTTPChannel

#: requests read ahead on a connection while one is served (waitress's ``channel_request_lookahead``)
LOOKAHEAD = 1

_serving = threading.local()  # the channel and request this request thread is serving


class QuietChannel(HTTPChannel):
    """HTTPChannel for a server made with ``channel_request_lookahead >= 1`` and :func:`quiet_triggers` installed."""

    _sending_from_task = False  # a request thread is in a send on this connection
    _client_done = False        # the client closed its side while a request was being served

    # -- the I/O thread's view --------------------------------------------------------------------------

    def _unsent(self) -> bool:
        return bool(self.total_outbufs_len) and not self._sending_from_task

    def readable(self) -> bool:
        if self._client_done:
            return False
        return not (self.will_close or self.close_when_flushed or len(self.requests) > self.adj.channel_request_lookahead
                    or self._unsent())

    def writable(self) -> bool:
        return bool(self._unsent() or self.will_close or self.close_when_flushed or (self._client_done and not self.requests))

    def handle_read(self) -> None:
        if not self.requests:
            return super().handle_read()
        # read only because of the lookahead: a request of this connection is being served
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except OSError as error:
            if error.args and error.args[0] not in wasyncore._DISCONNECTED and self.adj.log_socket_errors:
                self.logger.exception("Socket error")
            self.handle_close()
            return
        if not data:
            self._client_done = True  # a half-close: the answer still goes out, then the connection closes
            return
        self.last_activity = time.time()
        self.received(data)

    def handle_write(self) -> None:
        if self._client_done and not self.requests and not self.total_outbufs_len:
            self.handle_close()
            return
        super().handle_write()

    # -- a request thread -------------------------------------------------------------------------------

    def _flush_some(self, do_close: bool = True) -> bool:
        if do_close:  # the I/O thread's flush
            return super()._flush_some(do_close)
        self._sending_from_task = True  # write_soon's flush, on a request thread
        try:
            return super()._flush_some(do_close=False)
        finally:
            self._sending_from_task = False

    def service(self) -> None:
        _serving.channel, _serving.request = self, self.requests[0]
        try:
            super().service()
        finally:
            _serving.channel = _serving.request = None

    def io_thread_needed(self) -> bool:
        """Whether a trigger pulled now, from the request thread serving this channel, must wake the I/O thread."""
        if self.requests and self.requests[0] is _serving.request:
            return True  # still serving (waiting for the I/O thread to send a large answer)
        return bool(self.requests or not self.connected or self.will_close or self.close_when_flushed
                    or self.total_outbufs_len or self._client_done)


def quiet_triggers(server) -> None:
    """Make ``server.pull_trigger`` skip the wake-up a :class:`QuietChannel`'s request thread does not need."""
    pull = server.pull_trigger

    def pull_trigger() -> None:
        channel = getattr(_serving, "channel", None)
        if channel is None or channel.io_thread_needed():
            pull()

    server.pull_trigger = pull_trigger
