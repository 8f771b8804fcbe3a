"""The API's OpenAPI 3.1 document, served at ``/api/v1/openapi.json``: every route, field and error code.

Built from the same sources the routes use, so it cannot drift from them: the
error codes and their HTTP statuses come from :mod:`model_backend.errors` plus
the web tier's own refusals, the stage names from :mod:`model_backend.protocol`,
the history record's fields and types from the table (history/schema.py), and the limits from the
dashboard's settings. ``server_url`` is the URL the request came in on, so a
client generator pointed at this document talks to this server.
"""

from __future__ import annotations

from model_backend import errors
from model_backend.protocol import STAGES

from ..history.schema import requests as REQUESTS_TABLE
from ..settings import DashboardSettings

PREFIX = "/api/v1"
API_VERSION = "1"

#: the model_backend errors a classify request can end in, as (code, HTTP status)
BACKEND_ERRORS = tuple(
    (cls.code, cls.http_status)
    for cls in (errors.BadRequest, errors.BadImage, errors.TooLarge, errors.Overloaded, errors.NotReady,
                errors.InternalError, errors.BackendUnavailable, errors.BadReply, errors.BackendTimeout)
)
#: what the web tier itself answers before (or instead of) the backend: dashboard/web/guard.py and api/routes.py
WEB_ERRORS = (
    ("bad_host", 400, "The Host header names a host this server does not serve."),
    ("unauthorized", 401, "Users are configured and the request has no valid HTTP basic credentials."),
    ("cross_origin", 403, "A state-changing request whose Origin is another site."),
    ("not_found", 404, "No such API route."),
    ("method_not_allowed", 405, "The route exists but not for this method."),
    ("too_large", 413, "The request body is over the per-image upload limit."),
)
ERROR_DESCRIPTIONS = {
    "bad_request": "The request is malformed (e.g. no 'image' field, an empty body, a bad query parameter).",
    "bad_image": "The bytes are not an image of an accepted format (JPEG, PNG, WebP, GIF, BMP, TIFF), or are over the pixel limit.",
    "too_large": "The image is over the upload limit.",
    "overloaded": "The backend's queue is full: retry later.",
    "not_ready": "The backend is up but its model is still loading.",
    "internal": "An unexpected error in the backend; its log has the details.",
    "unavailable": "The backend cannot be reached.",
    "bad_reply": "The backend's answer was not a valid reply.",
    "timeout": "The backend did not answer in time.",
}
#: JSON Schema types of the history table's Python types (dashboard/history/schema.py)
JSON_TYPES = {int: "integer", float: "number", str: "string", bytes: "string"}


def history_record_properties() -> dict:
    """A history record's fields, typed from the table itself (a nullable column may also be null)."""
    properties = {}
    for column in REQUESTS_TABLE.columns:
        kind = JSON_TYPES.get(column.type.python_type, "string")
        properties[column.name] = {"type": [kind, "null"] if column.nullable else kind}
    return properties


def error_codes() -> list[tuple[str, int, str]]:
    """Every error code the API answers with: (code, HTTP status, what it means), backend errors first."""
    codes = [(code, status, ERROR_DESCRIPTIONS.get(code, "")) for code, status in BACKEND_ERRORS]
    seen = {code for code, _, _ in codes}
    return codes + [entry for entry in WEB_ERRORS if entry[0] not in seen]


def _error_responses(statuses: set[int]) -> dict:
    out: dict = {}
    for status in sorted(statuses):
        codes = [f"`{code}`: {text}" for code, code_status, text in error_codes() if code_status == status]
        out[str(status)] = {
            "description": "; ".join(codes) or "Error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


def _json(schema_name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


def _schemas(settings: DashboardSettings) -> dict:
    stage_ms = {stage: {"type": "number", "minimum": 0} for stage in STAGES}
    record_properties = history_record_properties()
    return {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
        },
        "ErrorDetail": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": [code for code, _, _ in error_codes()]},
                "message": {"type": "string", "description": "What went wrong and what to do, for a person."},
            },
        },
        "Prediction": {
            "type": "object", "required": ["index", "label", "p"],
            "properties": {
                "index": {"type": "integer", "minimum": 0, "description": "Class index in the model's output."},
                "label": {"type": "string"},
                "p": {"type": "number", "minimum": 0, "maximum": 1, "description": "Probability (softmax)."},
            },
        },
        "ClassifyResult": {
            "type": "object",
            "required": ["image", "sha256", "model", "predictions", "timings_ms", "batch_size", "roundtrip_ms"],
            "properties": {
                "image": {"type": "string", "description": "The file name (multipart filename, ?name= or X-Image-Name; else a sha256 prefix)."},
                "sha256": {"type": "string", "description": "SHA-256 of the image bytes (hex)."},
                "model": {"type": "string"},
                "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"},
                                "maxItems": settings.top_k, "description": "Top classes, most probable first."},
                "timings_ms": {"type": "object", "properties": stage_ms, "required": list(STAGES),
                               "description": "Milliseconds inside the backend: queue (waiting for a decode thread), "
                                              "decode, preprocess, inference (the forward pass of the whole batch), "
                                              "total (the request's whole stay in the backend)."},
                "batch_size": {"type": "integer", "minimum": 1, "description": "Images in the forward pass this one ran in."},
                "backend_roundtrip_ms": {"type": ["number", "null"], "description": "The dashboard's ZeroMQ round trip to the backend."},
                "roundtrip_ms": {"type": "number", "description": "The web tier's time for the request, backend round trip included."},
            },
        },
        "Health": {
            "type": "object", "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "starting", "unavailable", "stale"]},
                "checked_at": {"type": ["number", "null"], "description": "Unix time of the status poller's last check."},
                "age_s": {"type": ["number", "null"]},
                "backend": {"type": "object", "description": "The poller's snapshot of the backend's info op."},
                "error": {"$ref": "#/components/schemas/ErrorDetail"},
            },
        },
        "HistoryRecord": {"type": "object", "properties": record_properties},
        "History": {
            "type": "object", "required": ["count", "records", "summary"],
            "properties": {
                "count": {"type": "integer"},
                "records": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryRecord"}},
                "summary": {"type": "object", "description": "Per kind: count, errors, p50, p95 (ms); and the speedup."},
            },
        },
    }


def openapi_document(settings: DashboardSettings, server_url: str, max_history: int) -> dict:
    """The whole OpenAPI 3.1 document for this server."""
    upload_mb = settings.max_image_bytes // (1024 * 1024)
    classify = {
        "summary": "Classify one image",
        "description": f"Send one image (at most {upload_mb} MB) as a multipart field `image`, or as the raw request body. "
                       "The answer has the top classes and where the time went; the request is recorded in the history.",
        "operationId": "classify",
        "parameters": [
            {"name": "name", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 255},
             "description": "A name for a raw-body image in the history (else a sha256 prefix)."},
            {"name": "X-Image-Name", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255},
             "description": "Same as ?name=."},
        ],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                               "properties": {"image": {"type": "string", "format": "binary"}}}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        }},
        "responses": {"200": _json("ClassifyResult", "The top classes and the timings."),
                      **_error_responses({400, 401, 403, 413, 500, 502, 503, 504})},
    }
    health = {
        "summary": "Is the backend ready?",
        "description": "Answered from the status poller's last check (never a backend call), so it answers at once under any load.",
        "operationId": "health",
        "responses": {"200": _json("Health", "Ready."), "503": _json("Health", "Starting, unavailable or stale; `error` says why.")},
    }
    history = {
        "summary": "Recent requests",
        "operationId": "history",
        "parameters": [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": max_history, "default": 100}},
            {"name": "kind", "in": "query", "schema": {"type": "string", "enum": ["service", "monolith"]}},
        ],
        "responses": {"200": _json("History", "The newest records first, and a summary."), **_error_responses({400, 401})},
    }
    document = {"summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "warmserve", "version": API_VERSION,
            "description": "Image classification by a warm model process. Every error is "
                           "`{\"error\": {\"code\", \"message\"}}`; the codes: "
                           + ", ".join(f"`{code}` ({status})" for code, status, _ in error_codes()) + ".",
        },
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{}, {"basic": []}],
        "paths": {
            f"{PREFIX}/classify": {"post": classify},
            f"{PREFIX}/health": {"get": health},
            f"{PREFIX}/history": {"get": history},
            f"{PREFIX}/openapi.json": {"get": document},
        },
        "components": {
            "schemas": _schemas(settings),
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic",
                                          "description": "Only when the dashboard has users (python -m dashboard users add)."}},
        },
    }
