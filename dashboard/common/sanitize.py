"""One sanitiser for every string the dashboard stores or draws: file names, messages, labels, CSV cells, hover text.

Stored text comes from peers: a browser's file name, an API ``?name=`` or
``X-Image-Name`` header, a multipart filename, a backend reply, a monolith's
stderr. None of it is trusted:

- :func:`clean_name` / :func:`clean_text` strip control characters (every
  Unicode category ``C*``: C0/C1 controls, bidi overrides such as U+202E,
  zero-width format characters, lone surrogates, unassigned code points),
  collapse whitespace to single spaces and cap the length, so a 400 KB name
  is stored as at most 255 characters; a name is never empty (it falls back
  to the image's sha256 prefix).
- :func:`csv_cell` neutralises spreadsheet formulas (OWASP "CSV injection").
- :func:`plotly_text` escapes ``<``, ``>`` and ``&`` for Plotly, which renders
  a subset of HTML in hover text and axis labels. Dash components escape
  text themselves: do not pass their text through this.
"""

from __future__ import annotations

import html
import unicodedata

#: longest stored file name (characters)
NAME_MAX = 255
#: longest stored error message
MESSAGE_MAX = 1000
#: longest stored label, model name, error code, source
SHORT_MAX = 200
#: longest image name in a chart's hover text (the table and CSV keep the stored 255)
HOVER_NAME_MAX = 60
#: a name with nothing printable left falls back to this many characters of its sha256
FALLBACK_SHA_CHARS = 12
FALLBACK_NAME = "image"
ELLIPSIS = "…"
#: only this many times the cap is looked at, so the work is bounded whatever the input's length
_PRECUT = 8
#: the longest file extension kept when a long name is shortened
_EXTENSION_MAX = 16
#: OWASP: cells starting with these are formulas to Excel/LibreOffice (plus their full-width forms)
_FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
_CONTROL_STARTS = frozenset("\t\r\n")


def clean_text(value: object, limit: int = MESSAGE_MAX) -> str:
    """``value`` as one line of printable text: control and format characters gone, whitespace collapsed, capped."""
    return _shorten(_printable(_as_str(value)[: max(limit, 1) * _PRECUT]), limit)


def clean_name(value: object, sha256: str | None = None, limit: int = NAME_MAX, fallback: str | None = None) -> str:
    """A file name fit to store and show: :func:`clean_text`, keeping the extension when cut; never empty.

    A name with nothing printable becomes ``fallback``, else the start of ``sha256``, else "image".
    """
    raw = _as_str(value)
    text = _printable(raw[: limit * _PRECUT])
    if len(text) > limit or len(raw) > limit * _PRECUT:
        _, dot, extension = raw[-(_EXTENSION_MAX + 1):].rpartition(".")
        extension = _printable(extension) if dot else ""
        if extension and " " not in extension:
            text = _cut(text, limit - len(extension) - 1) + "." + extension
        else:
            text = _cut(text, limit)
    return text or fallback or fallback_name(sha256)


def fallback_name(sha256: str | None) -> str:
    """The name shown for an image without one: the start of its sha256 (hex only), else "image"."""
    prefix = "".join(c for c in str(sha256 or "")[:FALLBACK_SHA_CHARS] if c in "0123456789abcdefABCDEF")
    return prefix.lower() or FALLBACK_NAME


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula gets a leading ``'``; other values pass unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in _CONTROL_STARTS or value.lstrip(" \t\r\n\x0b\x0c")[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def plotly_text(value: object, limit: int = NAME_MAX) -> str:
    """Text for a Plotly hover template, label or tick: cleaned, capped, then ``<``, ``>`` and ``&`` escaped."""
    return html.escape(clean_text(value, limit), quote=False)


def _as_str(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _printable(text: str) -> str:
    """Drop every Unicode ``C*`` character (whitespace controls become spaces); collapse runs of whitespace."""
    kept = []
    for char in text:
        if unicodedata.category(char)[0] != "C":
            kept.append(char)
        elif char.isspace():  # tab, newline, ... read as a word break
            kept.append(" ")
    return " ".join("".join(kept).split())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    """``text`` cut to fewer than ``limit`` characters, ending in an ellipsis."""
    if limit <= len(ELLIPSIS):
        return text[: max(limit, 0)]
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS
