"""The JSON API on the dashboard's Flask server: /api/v1/classify, /health, /history, /openapi.json; and /metrics.

Every error is ``{"error": {"code", "message"}}`` with the HTTP status of the
matching model_backend error class (400 bad image or request, 413 too large,
503 backend down, overloaded or not ready, 504 timeout). The web tier
enforces its own request size limit (Flask's MAX_CONTENT_LENGTH) and answers
413 in JSON, not with an HTML page.

/api/v1/health never calls the backend: it reports the state the status poller
(dashboard/status/poller.py) keeps, with its age, so it answers at once under any
load or outage; a stuck poller is reported as ``stale``, never as ready.
/api/v1/openapi.json describes every route, field and error code (api/openapi.py);
/metrics is the Prometheus exposition of every dashboard process (dashboard/metrics/).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from model_backend.errors import BackendError, BadRequest, NotReady

from ..classify.service import classify_one, record_outcomes
from ..classify.uploads import Outcome, Upload
from ..metrics import registry as metrics
from ..settings import DashboardSettings
from ..web.callback_body import CALLBACK_PATH
from .multipart import FileFields, UnusualBody, find_file_part
from .openapi import openapi_document

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_HISTORY = 1000
#: multipart boundaries and headers around the image
MULTIPART_OVERHEAD = 64 * 1024
#: how long health waits for the poller's very first check (then answers anyway)
FIRST_CHECK_WAIT_S = 0.5
ENDPOINT_METHODS = {"classify": "POST", "health": "GET", "history": "GET", "openapi.json": "GET"}
#: the multipart field /api/v1/classify reads the image from
IMAGE_FIELD = "image"


def error_response(code: str, message: str, status: int):
    return jsonify(error_body(code, message)), status


def request_limit(settings: DashboardSettings) -> int:
    """Largest request body outside Dash's callback routes: one image plus multipart overhead."""
    return settings.max_image_bytes + MULTIPART_OVERHEAD


def health_body(status: dict) -> tuple[dict, int]:
    """(/api/v1/health JSON, HTTP status) from a poller snapshot."""
    if status.get("stale"):
        word = "stale"
    elif status["ready"]:
        word = "ready"
    else:
        word = "starting" if status["reachable"] else "unavailable"
    body = {"status": word, "checked_at": status.get("checked_at"), "age_s": status.get("age_s"), "backend": status}
    if word == "ready":
        return body, 200
    code = status.get("error_code") or NotReady.code
    message = status.get("error") or "The backend is up but its model is not loaded and warm yet."
    body["error"] = {"code": code, "message": message}
    return body, 503


def classify_body(upload: Upload, outcome: Outcome) -> dict:
    """/api/v1/classify's JSON for a classified image: the backend's typed reply plus the web tier's round trip."""
    reply = outcome.reply
    return {
        "image": upload.name, "sha256": outcome.sha256, "model": reply.model,
        "predictions": [prediction.to_wire() for prediction in reply.predictions],
        "timings_ms": reply.timings_ms.to_wire(), "batch_size": reply.batch_size,
        "backend_roundtrip_ms": reply.roundtrip_ms, "roundtrip_ms": outcome.latency_ms,
    }


def classify_answer(req, settings: DashboardSettings, client, store) -> tuple[dict, int]:
    """(/api/v1/classify's JSON, HTTP status) for a request: read the image, classify it, queue its history row.

    A werkzeug HTTPException (413: the body is over the request limit) propagates: see ``http_error_body``.
    """
    try:
        upload = _read_image(req)
    except BackendError as error:
        return refused_answer(error)
    return upload_answer(upload, settings, client, store)


def refused_answer(error: BackendError) -> tuple[dict, int]:
    """(JSON error, status) for a request refused before the backend (no image, bad request), counted in the metrics."""
    metrics.record_classify("api", False, error.code, None)
    return error_body(error.code, error.message), error.http_status


def upload_answer(upload: Upload, settings: DashboardSettings, client, store) -> tuple[dict, int]:
    """(/api/v1/classify's JSON, HTTP status) for an image read from a request: classify it, queue its history row."""
    outcome = classify_one(client, upload, settings.top_k, settings.max_image_bytes)
    record_outcomes(store, [outcome])
    if not outcome.ok or outcome.reply is None:
        return error_body(outcome.error_code or "internal", outcome.error_message or ""), outcome.http_status
    return classify_body(upload, outcome), 200


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def http_error_body(error: HTTPException, settings: DashboardSettings) -> tuple[dict, int]:
    """(JSON error, status) for a werkzeug HTTP error on an API path: 413 says the per-image limit."""
    if error.code == 413:
        message = f"The request is larger than the {settings.max_image_bytes // (1024 * 1024)} MB limit per image."
        return error_body("too_large", message), 413
    code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(error.code or 500, "http_error")
    return error_body(code, error.description or error.name), error.code or 500


def create_api(settings: DashboardSettings, client, store, poller) -> Blueprint:
    api = Blueprint("api_v1", __name__, url_prefix=PREFIX)

    @api.post("/classify")
    def classify():
        # Served by api/fast_route.py in front of Flask; this view answers when the app is used without it.
        body, status_code = classify_answer(request, settings, client, store)
        return jsonify(body), status_code

    @api.get("/health")
    def health():
        body, status_code = health_body(poller.snapshot(wait_first_s=FIRST_CHECK_WAIT_S))
        return jsonify(body), status_code

    @api.get("/history")
    def history():
        raw = request.args.get("limit", "100")
        try:
            limit = int(raw)
            if not 1 <= limit <= MAX_HISTORY:
                raise ValueError
        except ValueError:
            return error_response(BadRequest.code, f"Expected limit to be an integer from 1 to {MAX_HISTORY}. Received: limit={raw!r}", 400)
        kind = request.args.get("kind")
        if kind not in (None, "service", "monolith"):
            return error_response(BadRequest.code, f"Expected kind to be service or monolith. Received: kind={kind!r}", 400)
        records = store.recent(limit, kind)
        return jsonify({"count": len(records), "records": records, "summary": store.summary()})

    @api.get("/openapi.json")
    def openapi():
        return jsonify(openapi_document(settings, request.host_url, MAX_HISTORY))

    @api.route("/<path:unknown>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def not_found(unknown: str):
        # Without this, Dash's catch-all page route would answer unknown API paths with HTML.
        if unknown in ENDPOINT_METHODS:
            return error_response("method_not_allowed", f"{PREFIX}/{unknown} accepts {ENDPOINT_METHODS[unknown]} only.", 405)
        return error_response("not_found", f"No API endpoint {PREFIX}/{unknown}; see {PREFIX}/openapi.json for every route.", 404)

    return api


def install_api(server: Flask, settings: DashboardSettings, client, store, poller) -> None:
    """Register the blueprint, the size limits and JSON errors for every /api/ path."""
    server.config["MAX_CONTENT_LENGTH"] = request_limit(settings)
    dash_limit = settings.callback_body_limit
    server.register_blueprint(create_api(settings, client, store, poller))

    @server.get("/metrics")
    def prometheus_metrics():
        metrics.record_backend_status(poller.snapshot())
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    @server.before_request
    def allow_larger_dash_uploads():
        # Dash's callback route carries dropped files base64-encoded, several at a time.
        if request.path.endswith(CALLBACK_PATH):
            request.max_content_length = max(dash_limit, server.config["MAX_CONTENT_LENGTH"])

    @server.errorhandler(HTTPException)
    def json_errors(error: HTTPException):
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return error
        body, status_code = http_error_body(error, settings)
        return jsonify(body), status_code


def _read_image(req) -> Upload:
    """The image from a multipart field ``image``, or the raw request body."""
    if req.mimetype == "multipart/form-data":
        return _multipart_upload(req)
    data = req.get_data(cache=False)
    if not data:
        raise BadRequest("Expected an image: a multipart field 'image' or the raw image bytes as the request body. Received: an empty body")
    return Upload(req.args.get("name") or req.headers.get("X-Image-Name") or "", data, "api")


def missing_image(file_fields: tuple[str, ...]) -> BadRequest:
    """The error for a multipart body without the file field ``image`` (naming the file fields it has)."""
    return BadRequest(f"Expected a multipart file field named '{IMAGE_FIELD}'. Received: " + (", ".join(file_fields) or "no files"))


def upload_from_fields(found: FileFields) -> Upload:
    """The API's Upload from what api/multipart.py found in a body; BadRequest when it has no file field ``image``."""
    if found.wanted is None:
        raise missing_image(found.names)
    return Upload(found.wanted.filename, found.wanted.data, "api")  # Upload cleans the name (sha prefix when empty)


def _multipart_upload(req) -> Upload:
    """The API's Upload from the multipart field ``image``; BadRequest naming the file fields there are without it.

    The body is read once (the request's size limits apply: 413) and searched by api/multipart.py; a body
    of another shape goes to werkzeug's form parser, from the same bytes, as every body did before.
    """
    body = req.get_data(cache=True)  # cached: werkzeug's parser reads these bytes if it is needed
    try:
        found = find_file_part(body, req.mimetype_params.get("boundary", ""), IMAGE_FIELD,
                               max_parts=req.max_form_parts, max_memory=req.max_form_memory_size)
    except UnusualBody:
        file = req.files.get(IMAGE_FIELD)
        if file is None:  # a part werkzeug read no name from is filed under None
            raise missing_image(tuple(name for name in req.files if name)) from None
        return Upload(file.filename or "", file.read(), "api")
    return upload_from_fields(found)
