"""A cap on monolith runs shared by every dashboard thread and process on one host: N at once, M waiting, in order.

Each monolith run is a fresh TensorFlow process (about 600 MB and several
CPU-seconds), so the dashboard lets only ``slots`` run at once, across all
users, background-callback processes and waitress processes that share
``data_dir``. Up to ``max_waiting`` more callers wait in line, first come
first served, and see their place; the next one is refused at once with
:class:`QueueFull`.

It is all files in one local folder, each guarded by ``fcntl.flock``:

    lock        a mutex, held for a moment around every look at the queue
    counter     the last ticket number handed out
    slot-<i>    one per slot; a run holds an exclusive lock on one while it runs
    wait-<n>    one per waiting caller, locked by it; ``n`` orders the line

The kernel drops a flock when the last descriptor of its holder goes, even on
SIGKILL, so a killed run frees its slot and a killed waiter its place (the
next caller that finds its ``wait-`` file unlocked deletes it): no slot can
leak. A slot's descriptor is handed to the monolith subprocess as well
(:attr:`Slot.fd`, ``subprocess.Popen(pass_fds=...)``), so a slot stays taken
until that TensorFlow process has exited too, even if the dashboard process
that started it was killed first. flock works between processes on one host;
it does not coordinate hosts over NFS. Replicas on several hosts share one cap
through Redis instead (``--redis URL``: dashboard/jobs/redis_slots.py, the same
contract); :func:`monolith_slots` picks the implementation from the settings.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from model_backend.errors import Overloaded

if TYPE_CHECKING:
    from ..settings import DashboardSettings

log = logging.getLogger(__name__)

#: how often a waiting caller looks again (and reports its place)
POLL_S = 0.5
_TICKET_PREFIX = "wait-"
_SLOT_PREFIX = "slot-"


class QueueFull(Overloaded):
    """Every slot is busy and the waiting line is full: refused at once, try again later."""


class QueueTimeout(Overloaded):
    """A caller waited in line longer than it was willing to."""


@dataclass(frozen=True)
class QueuePlace:
    """Where a waiting caller stands: 1 = next to run."""

    position: int
    running: int
    slots: int

    @property
    def ahead(self) -> int:
        """Runs that will start or finish before this one can start: those in progress and those waiting ahead."""
        return self.running + self.position - 1

    def text(self) -> str:
        """"2nd in line, 2 runs ahead"."""
        return f"{ordinal(self.position)} in line, {self.ahead} run{'' if self.ahead == 1 else 's'} ahead"


class Slot:
    """One of the ``slots`` places to run, held until :meth:`release` (or the end of a ``with`` block)."""

    def __init__(self, index: int, fd: int):
        self.index = index
        self.fd = fd

    def release(self) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        _unlock_and_close(fd)

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Slot({self.index}, {'held' if self.fd >= 0 else 'released'})"


class MonolithSlots(Protocol):
    """The cap's one interface: files on one host (:class:`MonolithQueue`) or Redis across hosts (RedisMonolithQueue)."""

    slots: int
    max_waiting: int

    def acquire(self, on_wait: Callable[[QueuePlace], None] | None = None, timeout_s: float | None = None) -> Slot:
        """A slot, at once or after waiting in line; :class:`QueueFull` at once when the line is full."""

    def running(self) -> int:
        """How many slots are taken right now."""

    def waiting(self) -> int:
        """How many callers are in line right now."""


def monolith_slots(settings: "DashboardSettings") -> MonolithSlots:
    """The cap these settings share: in Redis when ``settings.redis`` is set, else files under data_dir."""
    if settings.redis:
        from ..jobs.redis_slots import RedisMonolithQueue

        return RedisMonolithQueue(settings.redis, slots=settings.monolith_concurrency,
                                  max_waiting=settings.monolith_queue)
    return MonolithQueue(settings.data_dir / "monolith-queue", slots=settings.monolith_concurrency,
                         max_waiting=settings.monolith_queue)


class MonolithQueue:
    """``slots`` runs at once and ``max_waiting`` callers in line, for every process using ``folder``."""

    def __init__(self, folder: str | Path, slots: int = 1, max_waiting: int = 4, poll_s: float = POLL_S):
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError(f"Expected slots to be an integer of at least 1. Received: slots={slots!r}")
        if isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 0:
            raise ValueError(f"Expected max_waiting to be an integer of at least 0. Received: max_waiting={max_waiting!r}")
        self.folder = Path(folder)
        self.slots = slots
        self.max_waiting = max_waiting
        self.poll_s = poll_s
        self.folder.mkdir(parents=True, exist_ok=True)

    # --- the public operations ---------------------------------------------------------------------

    def acquire(self, on_wait: Callable[[QueuePlace], None] | None = None, timeout_s: float | None = None) -> Slot:
        """A slot, at once or after waiting in line (``on_wait`` hears the place every poll while waiting).

        Raises :class:`QueueFull` at once when the line is full, :class:`QueueTimeout` after ``timeout_s``.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._mutex():
            waiting = self._live_tickets()
            if not waiting:
                slot = self._try_slot()
                if slot is not None:
                    return slot
            if len(waiting) >= self.max_waiting:
                raise QueueFull(full_message(len(waiting), self.slots))
            ticket, ticket_fd = self._take_ticket(waiting)
        try:
            while True:
                with self._mutex():
                    ahead = [n for n in self._live_tickets() if n < ticket]
                    if not ahead:
                        slot = self._try_slot()
                        if slot is not None:
                            self._drop_ticket(ticket, ticket_fd)
                            ticket_fd = -1
                            return slot
                    place = QueuePlace(len(ahead) + 1, self._running(), self.slots)
                wait_a_moment(place, on_wait, deadline, timeout_s, self.poll_s)
        finally:
            if ticket_fd >= 0:
                with self._mutex():
                    self._drop_ticket(ticket, ticket_fd)

    def running(self) -> int:
        """How many slots are taken right now."""
        with self._mutex():
            return self._running()

    def waiting(self) -> int:
        """How many callers are in line right now."""
        with self._mutex():
            return len(self._live_tickets())

    # --- helpers; every one of them runs under the mutex ----------------------------------------------

    @contextmanager
    def _mutex(self) -> Iterator[None]:
        fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            _unlock_and_close(fd)

    def _try_slot(self) -> Slot | None:
        for index in range(self.slots):
            fd = os.open(self._slot_path(index), os.O_RDWR | os.O_CREAT, 0o600)
            if _try_lock(fd):
                return Slot(index, fd)
            os.close(fd)
        return None

    def _running(self) -> int:
        busy = 0
        for index in range(self.slots):
            fd = os.open(self._slot_path(index), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if _try_lock(fd):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                else:
                    busy += 1
            finally:
                os.close(fd)
        return busy

    def _live_tickets(self) -> list[int]:
        """Numbers of the callers in line, in order; tickets whose holder died are deleted on the way."""
        live = []
        for path in self.folder.glob(_TICKET_PREFIX + "*"):
            number = _ticket_number(path)
            if number is None:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                if _try_lock(fd):  # nobody holds it: its waiter is gone
                    log.info("Removing the place of a monolith waiter that died (%s)", path.name)
                    path.unlink(missing_ok=True)
                else:
                    live.append(number)
            finally:
                os.close(fd)
        return sorted(live)

    def _take_ticket(self, waiting: list[int]) -> tuple[int, int]:
        counter = self.folder / "counter"
        try:
            last = int(counter.read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            last = 0
        number = max([last, *waiting]) + 1
        counter.write_text(str(number), encoding="ascii")
        fd = os.open(self.folder / f"{_TICKET_PREFIX}{number:012d}", os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):  # cannot happen under the mutex unless the folder is shared oddly
            os.close(fd)
            raise QueueFull(full_message(len(waiting), self.slots))
        return number, fd

    def _drop_ticket(self, number: int, fd: int) -> None:
        (self.folder / f"{_TICKET_PREFIX}{number:012d}").unlink(missing_ok=True)
        _unlock_and_close(fd)

    def _slot_path(self, index: int) -> Path:
        return self.folder / f"{_SLOT_PREFIX}{index}"


def wait_a_moment(place: QueuePlace, on_wait, deadline: float | None, timeout_s: float | None, poll_s: float) -> None:
    """One turn of waiting in line: report the place, give up past the deadline (QueueTimeout), sleep ``poll_s``."""
    if on_wait is not None:
        on_wait(place)
    if deadline is not None and time.monotonic() >= deadline:
        raise QueueTimeout(f"Waited {timeout_s:.0f} s for a free monolith slot ({place.text()}); try again in a minute.")
    time.sleep(poll_s)


def full_message(waiting: int, slots: int) -> str:
    """What a refused caller reads."""
    if waiting == 0:
        running = "A monolith run is" if slots == 1 else f"{slots} monolith runs are"
        return f"{running} already in progress and no more may wait; try again in a minute."
    return f"{waiting} monolith run{' is' if waiting == 1 else 's are'} already waiting; try again in a minute."


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _unlock_and_close(fd: int) -> None:
    """LOCK_UN, not just close: a process forked meanwhile may hold a copy of this descriptor (and so of the lock)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def _ticket_number(path: Path) -> int | None:
    try:
        return int(path.name[len(_TICKET_PREFIX):])
    except ValueError:
        return None
