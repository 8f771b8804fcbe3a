"""Requests in flight, findable by their request id, so that a retry joins the work already under way.

The client's Lazy Pirate retry resends a timed-out request with the same id on a
new socket (a new routing envelope). The server (jobs being decoded or
inferred) and the broker (requests waiting or at a worker) both keep their work
in an :class:`InFlight`: a retry with the same id *and the same content* is
attached to the existing entry (its envelope waits for the same reply, at most
``max_envelopes`` of them) instead of being done twice. Only the I/O loop that
owns it touches an InFlight (no lock).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, Protocol, TypeVar

from .protocol import Request

#: envelopes one request in flight answers at most (retries of the same id)
MAX_ENVELOPES = 8


class Entry(Protocol):
    request: Request
    envelopes: list[list[bytes]]


K = TypeVar("K", bound=Hashable)
E = TypeVar("E", bound=Entry)


class InFlight(Generic[K, E]):
    """Entries by key (a serial, a token), and the key of each request id's first entry."""

    def __init__(self, max_envelopes: int = MAX_ENVELOPES) -> None:
        self.max_envelopes = max_envelopes
        self._entries: dict[K, E] = {}
        self._by_request: dict[str, K] = {}

    def same(self, request: Request) -> E | None:
        """The entry already in flight for this very request (same id and content), if any."""
        key = self._by_request.get(request.id)
        entry = self._entries.get(key) if key is not None else None
        return entry if entry is not None and entry.request == request else None

    def add(self, key: K, entry: E) -> None:
        self._entries[key] = entry
        self._by_request.setdefault(entry.request.id, key)

    def attach(self, entry: E, envelope: list[bytes]) -> None:
        """Another caller waits for ``entry``'s reply (the oldest beyond ``max_envelopes`` gives up its place)."""
        if envelope in entry.envelopes:
            return
        entry.envelopes.append(envelope)
        if len(entry.envelopes) > self.max_envelopes:
            del entry.envelopes[0]

    def get(self, key: K) -> E | None:
        return self._entries.get(key)

    def pop(self, key: K) -> E | None:
        """Forget the entry at ``key`` (and its request id, unless a later entry owns that now)."""
        entry = self._entries.pop(key, None)
        if entry is not None and self._by_request.get(entry.request.id) == key:
            del self._by_request[entry.request.id]
        return entry

    def values(self) -> list[E]:
        return list(self._entries.values())

    def clear(self) -> None:
        self._entries.clear()
        self._by_request.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)
