"""Compressed responses: the page's 6.5 MB of JavaScript and CSS travel as about 2 MB, compressed once.

Two layers, both after every request:

- Static files (Dash's component suites and ``/assets/``): their URLs carry a
  fingerprint or a modification stamp, so a URL always names the same bytes.
  Each is gzipped once (level 6; plotly.min.js alone takes about 0.2-0.7 s to
  compress) and kept in a bounded in-memory cache; later requests get the
  cached bytes. They are also marked cacheable by the browser for a year
  (``immutable``) when their URL is versioned, so a browser fetches each once.
- Everything else worth it (the page, callback answers such as history
  figures, API JSON over ``MIN_SIZE`` bytes) goes through Flask-Compress
  (gzip, or brotli where the ``brotli`` module is installed), compressed per
  response. Small answers such as ``/api/v1/classify``'s are sent as they are:
  compressing them would cost more than it saves.
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections import OrderedDict

from flask import Flask, request
from flask_compress import Compress
from werkzeug.http import parse_accept_header

log = logging.getLogger(__name__)

STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/")
COMPRESSIBLE = frozenset({"text/html", "text/css", "text/plain", "text/javascript", "application/javascript",
                          "application/json", "image/svg+xml"})
#: responses smaller than this are not compressed
MIN_SIZE = 2048
LEVEL = 6
#: most bytes of compressed static files kept in memory (the page needs about 2 MB)
STATIC_CACHE_BYTES = 32 * 1024 * 1024
ONE_YEAR_S = 365 * 24 * 3600


class StaticGzipCache:
    """gzip bodies of static URLs, least recently used out first, at most ``max_bytes`` in all (thread-safe)."""

    def __init__(self, max_bytes: int = STATIC_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get_or_compress(self, key: str, data: bytes) -> bytes:
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        compressed = gzip.compress(data, compresslevel=LEVEL, mtime=0)
        with self._lock:
            if key not in self._entries and len(compressed) <= self.max_bytes:
                self._entries[key] = compressed
                self._size += len(compressed)
                while self._size > self.max_bytes:
                    _, old = self._entries.popitem(last=False)
                    self._size -= len(old)
        return compressed


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it; ``*`` allows it): werkzeug's parser."""
    return parse_accept_header(accept_encoding).quality("gzip") > 0


def install_compression(server: Flask) -> StaticGzipCache:
    """Flask-Compress for dynamic answers, and the cached static layer in front of it; returns the static cache."""
    server.config.setdefault("COMPRESS_MIMETYPES", sorted(COMPRESSIBLE))
    server.config.setdefault("COMPRESS_MIN_SIZE", MIN_SIZE)
    server.config.setdefault("COMPRESS_LEVEL", LEVEL)
    Compress(server)
    cache = StaticGzipCache()

    @server.after_request
    def compress_static(response):  # registered after Compress, so it runs before it (Flask runs them in reverse)
        if request.method != "GET" or not request.path.startswith(STATIC_PREFIXES):
            return response
        if request.query_string:  # a versioned URL (?v=... / ?m=...) always names the same bytes
            response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR_S}, immutable"
        if (response.status_code != 200 or "Content-Encoding" in response.headers
                or response.mimetype not in COMPRESSIBLE or not accepts_gzip(request.headers.get("Accept-Encoding", ""))):
            return response
        response.direct_passthrough = False
        data = response.get_data()
        if len(data) < MIN_SIZE:
            return response
        response.set_data(cache.get_or_compress(request.full_path, data))
        response.headers["Content-Encoding"] = "gzip"
        vary = response.headers.get("Vary")
        response.headers["Vary"] = "Accept-Encoding" if not vary else f"{vary}, Accept-Encoding"
        response.headers.pop("ETag", None)  # the ETag named the uncompressed bytes
        return response

    return cache
