"""Thumbnails never decode a huge image: measured as the peak memory of a fresh interpreter making one.

The other upload helpers are tested in tests/unit/test_dashboard_classify.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.helpers import ROOT


def huge_png(width: int, height: int, bit_depth: int = 16) -> bytes:
    """A valid grey PNG of any size, built row by row (a 7999 x 7999 16-bit one is ~130 KB)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * (width * bit_depth // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


PEAK_RSS = """
import resource, sys
from dashboard.classify.thumbnails import make_thumbnail
data = open(sys.argv[1], "rb").read()
make_thumbnail(b"")  # imports Pillow and friends before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = make_thumbnail(data)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(after - before, result is not None)
"""


@pytest.mark.parametrize("size, bits", [((7999, 7999), 16), ((20000, 20000), 8)])
def test_a_thumbnail_never_decodes_a_huge_image(tmp_path, size, bits):
    path = tmp_path / "huge.png"
    path.write_bytes(huge_png(*size, bit_depth=bits))
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    grown_kb, made = out.stdout.split()
    assert made == "False"  # no preview for it (the backend decides whether it is classified)
    assert int(grown_kb) < 32 * 1024  # decoding 7999 x 7999 x 16 bits would take 128 MB at least
