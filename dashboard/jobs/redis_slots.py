"""The monolith cap in Redis: N runs at once and M waiting, in order, for every dashboard replica sharing the Redis.

The same contract as the one-host file locks (``monolith/queue.py``: ``acquire``
hands out a :class:`Slot`, a full line is refused at once with
:class:`QueueFull`, a waiter hears its :class:`QueuePlace`), kept in four keys:

    <name>:holders        sorted set, token -> lease expiry (ms, Redis clock): the runs in progress
    <name>:line           sorted set, token -> ticket number: the callers in line, in order
    <name>:line-expiry    sorted set, token -> lease expiry of each caller in line
    <name>:counter        the last ticket number handed out

Every look is one Lua script, so it is atomic across replicas, and each script
first drops the holders and waiters whose lease has run out. A holder renews
its lease from a daemon thread every ``lease_s / 3`` while its run lives; a
waiter renews its place on every poll. So a replica that dies (SIGKILL, a lost
node) frees its slots and places within ``lease_s`` without anyone cleaning up.
Times come from Redis' own clock (``TIME``), never from the replicas' clocks.

Unlike the file locks, a slot here is not tied to the monolith subprocess: if
the replica is killed while its monolith runs, the slot frees after ``lease_s``
even if that orphaned TensorFlow process still runs. :attr:`Slot.fd` is a
descriptor of ``/dev/null``, so the runner's ``pass_fds`` works unchanged.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Callable

import redis

from ..monolith.queue import POLL_S, QueueFull, QueuePlace, Slot, full_message, wait_a_moment

log = logging.getLogger(__name__)

#: a holder or waiter that has not renewed for this long is taken for dead
LEASE_S = 30.0
KEY_NAME = "warmserve:monolith"

_PURGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, token in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('ZREM', KEYS[2], token)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
"""

#: ARGV: token, slots, max_waiting, lease_ms -> {1 = got a slot | 0 = in line | -1 = refused, position or waiting, running}
_ENTER = _PURGE + """
local slots, max_waiting, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local running = redis.call('ZCARD', KEYS[1])
local waiting = redis.call('ZCARD', KEYS[2])
if waiting == 0 and running < slots then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  return {1, 0, running + 1}
end
if waiting >= max_waiting then
  return {-1, waiting, running}
end
local ticket = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[2], ticket, ARGV[1])
redis.call('ZADD', KEYS[3], now + lease, ARGV[1])
return {0, waiting + 1, running}
"""

#: ARGV: token, slots, lease_ms -> {1 = got a slot | 0 = still in line | -2 = place lost, position, running}
_POLL = _PURGE + """
local slots, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local running = redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if not rank then
  return {-2, 0, running}
end
if rank == 0 and running < slots then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  return {1, 0, running + 1}
end
redis.call('ZADD', KEYS[3], now + lease, ARGV[1])
return {0, rank + 1, running}
"""

#: ARGV: token, lease_ms -> 1 renewed | 0 the lease had already run out (the slot was given up)
_RENEW = _PURGE + """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""

#: ARGV: token -> nothing; leaves a slot or a place in line
_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 0
"""

#: -> {running, waiting}
_COUNT = _PURGE + """
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
"""


class JobsUnavailable(QueueFull):
    """Redis could not be reached: the run is refused (at once) like a full line, with a message that says why."""


class RedisSlot(Slot):
    """A held lease on one of the slots; renewed from a daemon thread until :meth:`release`."""

    def __init__(self, queue: "RedisMonolithQueue", token: str):
        super().__init__(0, os.open(os.devnull, os.O_RDONLY))
        self.token = token
        self._queue = queue
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name="monolith-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self._queue.lease_s / 3):
            try:
                if not self._queue._script(_RENEW, self.token, self._queue.lease_ms):
                    log.warning("The lease of monolith slot %s ran out before it was renewed; the cap may be "
                                "exceeded by one run until this one ends", self.token)
                    return
            except redis.RedisError as exc:  # try again at the next tick; the lease covers a short outage
                log.warning("Could not renew monolith slot %s in Redis: %s", self.token, exc)

    def release(self) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        self._stop.set()
        os.close(fd)
        try:
            self._queue._script(_LEAVE, self.token)
        except redis.RedisError as exc:
            log.warning("Could not release monolith slot %s in Redis (it frees itself within %.0f s): %s",
                        self.token, self._queue.lease_s, exc)

    def __repr__(self) -> str:
        return f"RedisSlot({self.token}, {'held' if self.fd >= 0 else 'released'})"


class RedisMonolithQueue:
    """``slots`` runs at once and ``max_waiting`` callers in line, for every process using the Redis at ``url``."""

    def __init__(self, url: str, slots: int = 1, max_waiting: int = 4, poll_s: float = POLL_S,
                 lease_s: float = LEASE_S, name: str = KEY_NAME):
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError(f"Expected slots to be an integer of at least 1. Received: slots={slots!r}")
        if isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 0:
            raise ValueError(f"Expected max_waiting to be an integer of at least 0. Received: max_waiting={max_waiting!r}")
        if not lease_s > 3 * poll_s:
            raise ValueError(f"Expected lease_s to be more than three polls ({3 * poll_s} s). Received: lease_s={lease_s!r}")
        self.slots = slots
        self.max_waiting = max_waiting
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.lease_ms = int(lease_s * 1000)
        self.keys = [f"{name}:holders", f"{name}:line", f"{name}:line-expiry", f"{name}:counter"]
        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._scripts: dict[str, redis.commands.core.Script] = {}

    def acquire(self, on_wait: Callable[[QueuePlace], None] | None = None, timeout_s: float | None = None) -> Slot:
        """A slot, at once or after waiting in line (``on_wait`` hears the place every poll while waiting).

        Raises :class:`QueueFull` at once when the line is full (or Redis cannot be reached),
        :class:`~..monolith.queue.QueueTimeout` after ``timeout_s``.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        token = uuid.uuid4().hex
        got, count, running = self._call(_ENTER, token, self.slots, self.max_waiting, self.lease_ms)
        if got == 1:
            return RedisSlot(self, token)
        if got == -1:
            raise QueueFull(full_message(count, self.slots))
        place = QueuePlace(count, running, self.slots)
        try:
            while True:
                wait_a_moment(place, on_wait, deadline, timeout_s, self.poll_s)
                got, position, running = self._call(_POLL, token, self.slots, self.lease_ms)
                if got == -2:  # this process stalled past its lease: line up again, at the end
                    log.warning("Lost monolith place %s in line (its lease ran out); lining up again", token)
                    got, position, running = self._call(_ENTER, token, self.slots, self.max_waiting, self.lease_ms)
                    if got == -1:
                        raise QueueFull(full_message(position, self.slots))
                if got == 1:
                    slot = RedisSlot(self, token)
                    token = ""
                    return slot
                place = QueuePlace(position, running, self.slots)
        finally:
            if token:
                try:
                    self._script(_LEAVE, token)
                except redis.RedisError:  # its place expires within lease_s
                    pass

    def running(self) -> int:
        """How many slots are taken right now (by live leases)."""
        return int(self._call(_COUNT)[0])

    def waiting(self) -> int:
        """How many callers are in line right now."""
        return int(self._call(_COUNT)[1])

    def _call(self, script: str, *args):
        """Run a script, turning Redis being unreachable into a refusal the user can read."""
        try:
            return self._script(script, *args)
        except redis.RedisError as exc:
            log.error("Monolith cap: Redis cannot be reached: %s", exc)
            raise JobsUnavailable("The job queue (Redis) cannot be reached, so no monolith run can start; "
                                  "try again in a minute.") from exc

    def _script(self, script: str, *args):
        """EVALSHA (EVAL the first time) of one of the scripts above on this queue's keys."""
        runner = self._scripts.get(script)
        if runner is None:
            runner = self._scripts[script] = self._redis.register_script(script)
        return runner(keys=self.keys, args=args)
