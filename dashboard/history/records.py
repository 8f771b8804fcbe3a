"""History records as plain dicts, built by pure functions: a service reply, a failed request, a monolith run.

The ``kind`` tells "service" rows (one request to the warm backend) from
"monolith" rows (a fresh process that imports TensorFlow and loads the model
for one image). ``latency_ms`` is what the user waited: for the service, the
round trip measured by the dashboard; for the monolith, the subprocess's wall
time when the dashboard ran it, else the monolith's own reported total.
:func:`clean_record` is the last line that cleans and caps every text column
before a row is stored.
"""

from __future__ import annotations

from typing import Mapping

from model_backend.protocol import STAGES

from ..common.sanitize import MESSAGE_MAX, SHORT_MAX, clean_name, clean_text

SERVICE = "service"
MONOLITH = "monolith"
KINDS = (SERVICE, MONOLITH)
#: a service row has a ``<stage>_ms`` column for every stage of protocol.STAGES but the total (``backend_total_ms``)
SERVICE_STAGE_COLUMNS = tuple(stage for stage in STAGES if stage != "total")
#: text columns and their caps (characters); ``image`` is a file name (sanitize.NAME_MAX)
TEXT_LIMITS = {"source": SHORT_MAX, "sha256": SHORT_MAX, "model": SHORT_MAX, "error_code": SHORT_MAX,
               "error_message": MESSAGE_MAX, "top1_label": SHORT_MAX}


def service_record(image: str, sha256: str | None, reply: Mapping, latency_ms: float, source: str = "upload") -> dict:
    """A successful backend reply (``ClassifyReply.to_wire()``; missing fields stay empty) as a history record."""
    timings = reply.get("timings_ms") or {}
    top1 = (reply.get("predictions") or [{}])[0]
    return {
        "kind": SERVICE, "source": source, "image": image, "sha256": sha256, "model": reply.get("model"), "ok": True,
        "latency_ms": latency_ms, **{f"{stage}_ms": timings.get(stage) for stage in SERVICE_STAGE_COLUMNS},
        "backend_total_ms": timings.get("total"), "batch_size": reply.get("batch_size"),
        "top1_index": top1.get("index"), "top1_label": top1.get("label"), "top1_p": top1.get("p"),
    }


def error_record(kind: str, image: str, sha256: str | None, code: str, message: str, latency_ms: float | None = None,
                 source: str = "upload", model: str | None = None) -> dict:
    """A refused or failed request as a history record."""
    return {"kind": kind, "source": source, "image": image, "sha256": sha256, "model": model, "ok": False,
            "error_code": code, "error_message": message, "latency_ms": latency_ms}


def monolith_record(image: str, result: Mapping, wall_ms: float | None = None, source: str = "cli",
                    sha256: str | None = None) -> dict:
    """The monolith's JSON (success or ``{"error": ...}``) as a history record."""
    error = result.get("error")
    if error:
        return error_record(MONOLITH, image, sha256, str(error.get("code", "internal")), str(error.get("message", "")),
                            wall_ms, source, result.get("model"))
    timings = result.get("timings_ms") or {}
    top1 = (result.get("predictions") or [{}])[0]
    total = timings.get("total")
    return {
        "kind": MONOLITH, "source": source, "image": image, "sha256": sha256, "model": result.get("model"), "ok": True,
        "latency_ms": wall_ms if wall_ms is not None else total, "import_ms": timings.get("import"),
        "model_load_ms": timings.get("model_load"), "preprocess_ms": timings.get("preprocess"),
        "inference_ms": timings.get("inference"), "backend_total_ms": total, "batch_size": 1,
        "top1_index": top1.get("index"), "top1_label": top1.get("label"), "top1_p": top1.get("p"),
    }


def clean_record(row: dict) -> dict:
    """Clean and cap every text column in place (the last line before a row is stored)."""
    row["image"] = clean_name(row.get("image"), row.get("sha256") if isinstance(row.get("sha256"), str) else None)
    for column, limit in TEXT_LIMITS.items():
        if row.get(column) is not None:
            row[column] = clean_text(row[column], limit) or None
    return row
