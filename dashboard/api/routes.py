"""The JSON API on the dashboard's Flask server: /api/v1/classify, /api/v1/health, /api/v1/history.

Every error is ``{"error": {"code", "message"}}`` with the HTTP status of the
matching model_backend error class (400 bad image or request, 413 too large,
503 backend down, overloaded or not ready, 504 timeout). The web tier
enforces its own request size limit (Flask's MAX_CONTENT_LENGTH) and answers
413 in JSON, not with an HTML page.

/api/v1/health never calls the backend: it reports the state the status poller
(dashboard/status/poller.py) keeps, with its age, so it answers at once under any
load or outage; a stuck poller is reported as ``stale``, never as ready.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from model_backend.errors import BackendError, BadRequest, NotReady

from ..classify.service import classify_one, record_outcomes
from ..classify.uploads import Outcome, Upload
from ..settings import DashboardSettings
from ..web.callback_body import CALLBACK_PATH

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_HISTORY = 1000
#: multipart boundaries and headers around the image
MULTIPART_OVERHEAD = 64 * 1024
#: how long health waits for the poller's very first check (then answers anyway)
FIRST_CHECK_WAIT_S = 0.5
ENDPOINT_METHODS = {"classify": "POST", "health": "GET", "history": "GET"}


def error_response(code: str, message: str, status: int):
    return jsonify({"error": {"code": code, "message": message}}), status


def backend_error_response(error: BackendError):
    return error_response(error.code, error.message, error.http_status)


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


def create_api(settings: DashboardSettings, client, store, poller) -> Blueprint:
    api = Blueprint("api_v1", __name__, url_prefix=PREFIX)

    @api.post("/classify")
    def classify():
        try:
            upload = _read_image(request)
        except BackendError as error:
            return backend_error_response(error)
        outcome = classify_one(client, upload, settings.top_k, settings.max_image_bytes)
        record_outcomes(store, [outcome])
        if not outcome.ok or outcome.reply is None:
            return error_response(outcome.error_code or "internal", outcome.error_message or "", outcome.http_status)
        return jsonify(classify_body(upload, outcome))

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

    @api.route("/<path:unknown>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def not_found(unknown: str):
        # Without this, Dash's catch-all page route would answer unknown API paths with HTML.
        if unknown in ENDPOINT_METHODS:
            return error_response("method_not_allowed", f"{PREFIX}/{unknown} accepts {ENDPOINT_METHODS[unknown]} only.", 405)
        return error_response("not_found", f"No API endpoint {PREFIX}/{unknown}; see /api/v1/health, /classify, /history.", 404)

    return api


def install_api(server: Flask, settings: DashboardSettings, client, store, poller) -> None:
    """Register the blueprint, the size limits and JSON errors for every /api/ path."""
    server.config["MAX_CONTENT_LENGTH"] = request_limit(settings)
    dash_limit = settings.callback_body_limit
    server.register_blueprint(create_api(settings, client, store, poller))

    @server.before_request
    def allow_larger_dash_uploads():
        # Dash's callback route carries dropped files base64-encoded, several at a time.
        if request.path.endswith(CALLBACK_PATH):
            request.max_content_length = max(dash_limit, server.config["MAX_CONTENT_LENGTH"])

    @server.errorhandler(HTTPException)
    def json_errors(error: HTTPException):
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return error
        if error.code == 413:
            message = f"The request is larger than the {settings.max_image_bytes // (1024 * 1024)} MB limit per image."
            return error_response("too_large", message, 413)
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(error.code or 500, "http_error")
        return error_response(code, error.description or error.name, error.code or 500)


def _read_image(req) -> Upload:
    """The image from a multipart field ``image``, or the raw request body."""
    if req.mimetype == "multipart/form-data":
        file = req.files.get("image")
        if file is None:
            raise BadRequest("Expected a multipart file field named 'image'. Received: " +
                             (", ".join(req.files) or "no files"))
        return Upload(file.filename or "", file.read(), "api")  # Upload cleans the name (sha prefix when empty)
    data = req.get_data(cache=False)
    if not data:
        raise BadRequest("Expected an image: a multipart field 'image' or the raw image bytes as the request body. Received: an empty body")
    return Upload(req.args.get("name") or req.headers.get("X-Image-Name") or "", data, "api")
