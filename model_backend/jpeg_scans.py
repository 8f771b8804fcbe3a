"""A progressive JPEG rewritten to decode at 1/8 scale to the same pixels, from a fraction of its scans.

Why: at 1/8 scale (Pillow's draft for any photo of 8 or more times the model's
input size) libjpeg's inverse DCT of a full-resolution component is 1x1: it
reads only the DC coefficient of each block. A progressive JPEG stores the DC
coefficients in their own scans and the AC coefficients (most of the bytes)
in others, so the AC scans of those components never need entropy decoding.
Skipping them makes a 12-MP progressive photo several times cheaper to decode.

Dropping the AC scans alone does NOT give the same pixels, for two reasons
(both in libjpeg-turbo's ``jdmaster.c`` and ``jdcoefct.c``):

* A subsampled component (4:2:0 chroma) is scaled up by the IDCT rather than by
  the upsampler: at 1/8 its IDCT is 2x2, which reads AC coefficients. Such a
  component keeps every one of its scans.
* Block smoothing: when a component has no AC data at all, libjpeg estimates
  low AC coefficients *and re-estimates the DC coefficient* from the DC values
  around each block ("DC interpolation"), which changes the 1x1 output.
  So each component whose AC scans were dropped gets one tiny, synthetic AC scan
  instead that says "every AC coefficient is exactly zero" (one EOB run per
  32767 blocks): its AC coefficients are then fully known, no smoothing runs,
  and the 1x1 IDCT sees the DC coefficient the original file gives.

:func:`eighth_scale_jpeg` returns the rewritten bytes (every marker segment
kept in order: APPn/EXIF/ICC, COM, DQT, DHT, DRI, SOF2, the scans kept; the
synthetic scans just before EOI) or ``None`` for anything it does not handle,
so the caller decodes the original instead: not progressive Huffman (SOF2),
not 8-bit, arithmetic or hierarchical coding, a malformed or truncated
marker structure (no EOI after the last scan, a scan not ended by a marker,
lengths past the end), a dropped scan that libjpeg would refuse (bad
progression parameters, an unknown component, an undefined or invalid
Huffman table), a component whose AC scans code none of the coefficients
1-9 (libjpeg would interpolate its DC), nothing to drop, or more than ``_MAX_SEGMENTS`` marker
segments (which bounds the parser's loop). The input is untrusted: every read is
bounds-checked, the only exceptions caught are those of the parser's own
reads, the end of each scan's entropy-coded data is found by one regular
expression search (``0xFF`` followed by neither ``0x00``, a stuffed byte, nor
``0xD0``-``0xD7``, a restart marker), and the output is never larger than the
input.

The pixels are the same only at 1/8 scale (and only with libjpeg's DCT-domain
scaling, as Pillow's ``draft`` uses it); at any other scale every AC
coefficient counts. The caller checks the scale. They are the same for every
intact file; a file whose entropy-coded data is corrupt, which libjpeg still
decodes (with a "premature end of data segment" warning), may differ after
the break: libjpeg smooths the rows after it with the coefficient precision
of the scans before the last one, and the rewrite changes which scan is last.
Such a file decodes to an image either way.
"""

from __future__ import annotations

import re
import struct

_SOI, _EOI, _SOS, _DHT, _SOF2 = 0xD8, 0xD9, 0xDA, 0xC4, 0xC2
#: Marker segments kept as they are between SOI and EOI: DQT, DRI, APP0-APP15, COM (plus DHT, SOF2 and SOS).
_KEPT_SEGMENTS = frozenset({0xDB, 0xDD, 0xFE} | set(range(0xE0, 0xF0)))
#: One marker (0xFF not followed by a stuffed 0x00 or a restart marker): where a scan's entropy-coded data ends.
_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_FILL_BYTES = re.compile(rb"\xff+")
_MAX_EOB_RUN = 32767  # the longest end-of-band run one symbol can code (EOB14 + 14 extra bits)
_DCT_SIZE = 8
_SYNTHETIC_AC_TABLE = 0
#: libjpeg's block smoothing looks at AC coefficients 1-9 (zigzag order): with none of them known, it changes DC.
_SMOOTHED_AC_COEFFICIENTS = 9
#: More marker segments than this (real files have a few dozen) is not a file to rewrite: it bounds the Python loop.
_MAX_SEGMENTS = 1024


def eighth_scale_jpeg(data: bytes) -> bytes | None:
    """The progressive JPEG ``data`` with the scans a 1/8-scale decode ignores replaced; None if not applicable.

    Decoded by libjpeg at 1/8 scale, the result gives the same pixels as ``data``.
    """
    try:
        return _rewrite(memoryview(data).cast("B"))
    except (IndexError, ValueError, TypeError, struct.error):  # the parser's own reads past a malformed structure
        return None


class _Frame:
    """What the SOF2 segment says: size and, per component id, sampling factors."""

    def __init__(self, width: int, height: int, sampling: dict[int, tuple[int, int]]) -> None:
        self.width, self.height, self.sampling = width, height, sampling
        self.max_h = max(h for h, _ in sampling.values())
        self.max_v = max(v for _, v in sampling.values())

    def dc_only_components(self) -> set[int]:
        """Component ids whose IDCT at 1/8 scale is 1x1 (libjpeg's ``jpeg_calc_output_dimensions`` rule)."""
        found = set()
        for component, (h, v) in self.sampling.items():
            size = 1  # _min_DCT_scaled_size at 1/8
            while size < _DCT_SIZE and self.max_h % (h * size * 2) == 0 and self.max_v % (v * size * 2) == 0:
                size *= 2
            if size == 1:
                found.add(component)
        return found

    def blocks(self, component: int) -> int:
        """DCT blocks in a non-interleaved scan of ``component`` (its own size, not padded to whole MCUs)."""
        h, v = self.sampling[component]
        width = -(-self.width * h // self.max_h)
        height = -(-self.height * v // self.max_v)
        return -(-width // _DCT_SIZE) * -(-height // _DCT_SIZE)


def _rewrite(data: memoryview) -> bytes | None:
    size = len(data)
    if size < 4 or data[0] != 0xFF or data[1] != _SOI:
        return None
    parts: list[memoryview] = [data[:2]]
    frame: _Frame | None = None
    dc_only: set[int] = set()
    ac_tables: dict[int, bool] = {}  # AC table slot -> defined and valid
    dropped: set[int] = set()
    low_coded: set[int] = set()  # components with a dropped scan that codes one of the AC coefficients 1-9
    position = 2
    for _ in range(_MAX_SEGMENTS):
        fill = _FILL_BYTES.match(data, position)  # 0xFF, with optional 0xFF fill bytes before the marker code
        if fill is None or fill.end() >= size:
            return None
        marker, start = data[fill.end()], fill.end() - 1
        if marker == _EOI:
            if frame is None or not dropped:
                return None
            break
        if start + 4 > size:
            return None
        length = (data[start + 2] << 8) | data[start + 3]
        end = start + 2 + length
        if length < 2 or end > size:
            return None
        body = data[start + 4:end]
        if marker == _SOF2:
            if frame is not None:
                return None
            frame = _parse_frame(body)
            if frame is None:
                return None
            dc_only = frame.dc_only_components()
            parts.append(data[start:end])
            position = end
        elif marker == _DHT:
            if not _read_huffman_tables(body, ac_tables):
                return None
            parts.append(data[start:end])
            position = end
        elif marker == _SOS:
            if frame is None:
                return None
            found = _MARKER_AFTER_SCAN.search(data, end)
            if found is None:
                return None  # truncated: the entropy-coded data runs to the end of the file
            scan = _parse_scan(body, frame)
            if scan is None:
                return None
            components, ss, se, ah, al, tables = scan
            if ss > 0 and components[0] in dc_only:
                if not ac_tables.get(tables[0] & 0x0F, False) or not _valid_ac_progression(ss, se, ah, al):
                    return None  # libjpeg would stop at this scan: leave the error to it
                dropped.add(components[0])
                if ss <= _SMOOTHED_AC_COEFFICIENTS:
                    low_coded.add(components[0])
            else:
                parts.append(data[start:found.start()])
            position = found.start()
        elif marker in _KEPT_SEGMENTS:
            parts.append(data[start:end])
            position = end
        else:  # SOF0/1/3/5-15, DAC, DNL, DHP, EXP, JPGn, RSTn or TEM outside a scan, ...: not ours to rewrite
            return None
    else:
        return None  # more than _MAX_SEGMENTS segments
    if dropped - low_coded:
        return None  # libjpeg interpolates the DC of such a component (no AC 1-9 known): zero AC would stop that
    synthetic = _zero_ac_scans(frame, sorted(dropped))
    kept = sum(len(part) for part in parts)
    if kept + len(synthetic) + 2 >= size:
        return None
    return b"".join([*parts, synthetic, b"\xff\xd9"])


def _parse_frame(body: memoryview) -> _Frame | None:
    if len(body) < 6:
        return None
    precision, height, width, count = struct.unpack_from(">BHHB", body)
    if precision != 8 or height == 0 or width == 0 or not 1 <= count <= 4 or len(body) != 6 + 3 * count:
        return None
    sampling: dict[int, tuple[int, int]] = {}
    for index in range(count):
        component, factors = body[6 + 3 * index], body[7 + 3 * index]
        h, v = factors >> 4, factors & 0x0F
        if component in sampling or not 1 <= h <= 4 or not 1 <= v <= 4:
            return None
        sampling[component] = (h, v)
    return _Frame(width, height, sampling)


def _parse_scan(body: memoryview, frame: _Frame):
    """(component ids, Ss, Se, Ah, Al, table selectors) of an SOS segment, or None if libjpeg would refuse it."""
    if len(body) < 1:
        return None
    count = body[0]
    if not 1 <= count <= 4 or len(body) != 4 + 2 * count:
        return None
    components = [body[1 + 2 * index] for index in range(count)]
    tables = [body[2 + 2 * index] for index in range(count)]
    if len(set(components)) != count or any(component not in frame.sampling for component in components):
        return None
    ss, se, approximation = body[1 + 2 * count], body[2 + 2 * count], body[3 + 2 * count]
    if ss > 0 and count != 1:
        return None
    return components, ss, se, approximation >> 4, approximation & 0x0F, tables


def _valid_ac_progression(ss: int, se: int, ah: int, al: int) -> bool:
    """libjpeg's checks on an AC scan's parameters (``start_pass_phuff_decoder``), which stop decoding when broken."""
    return ss <= se < 64 and al <= 13 and (ah == 0 or al == ah - 1)


def _read_huffman_tables(body: memoryview, ac_tables: dict[int, bool]) -> bool:
    """Record which AC tables a DHT segment defines (and whether libjpeg would accept them); False if malformed."""
    offset = 0
    while offset < len(body):
        if offset + 17 > len(body):
            return False
        index = body[offset]
        counts = body[offset + 1:offset + 17]
        total = sum(counts)
        offset += 17
        if total > 256 or offset + total > len(body) or (index & 0x0F) > 3 or (index & 0xE0):
            return False
        if index & 0x10:
            ac_tables[index & 0x0F] = _codes_fit(counts)
        offset += total
    return True


def _codes_fit(counts: memoryview) -> bool:
    """True if the code lengths make a Huffman code libjpeg accepts (no code of all ones, none too long)."""
    code = 0
    for length, count in enumerate(counts, start=1):
        code += count
        if count and code >= 1 << length:
            return False
        code <<= 1
    return True


def _zero_ac_scans(frame: _Frame, components: list[int]) -> bytes:
    """A DHT, a DRI of 0 and, per component, one AC scan (Ss=1, Se=63, Ah=Al=0) that sets every AC coefficient to 0.

    The Huffman table codes EOB0..EOB14 (an end-of-band run of 2**r plus r extra bits) with 4-bit codes r.
    """
    symbols = bytes(r << 4 for r in range(15))
    counts = bytes([0, 0, 0, len(symbols)] + [0] * 12)
    table = bytes([0x10 | _SYNTHETIC_AC_TABLE]) + counts + symbols
    out = [b"\xff\xc4" + struct.pack(">H", 2 + len(table)) + table, b"\xff\xdd\x00\x04\x00\x00"]
    for component in components:
        out.append(b"\xff\xda\x00\x08\x01" + bytes([component, _SYNTHETIC_AC_TABLE, 1, 63, 0]))
        out.append(_eob_runs(frame.blocks(component)))
    return b"".join(out)


def _eob_runs(blocks: int) -> bytes:
    """Entropy-coded data for ``blocks`` all-zero blocks: EOB runs of at most 32767, padded with 1s, 0xFF stuffed."""
    bits, length = 0, 0
    while blocks > 0:
        run = min(blocks, _MAX_EOB_RUN)
        r = run.bit_length() - 1
        bits = (bits << (4 + r)) | (r << r) | (run - (1 << r))
        length += 4 + r
        blocks -= run
    padding = -length % 8
    bits = (bits << padding) | ((1 << padding) - 1)
    length += padding
    return (bits.to_bytes(length // 8, "big") if length else b"").replace(b"\xff", b"\xff\x00")
