"""POST /api/v1/classify answered at the WSGI layer, in front of Flask: the API's hot path without Flask's machinery.

Why: for every request Flask builds a request context, opens a (signed-cookie)
session, matches the URL against Dash's routes, runs Dash's and the
dashboard's before/after-request hooks (setup, callback-body check,
compression) and builds a Response: work the classify answer never needs.
``ClassifyRoute`` wraps ``Flask.wsgi_app`` (inside the guard, which still vets
every request first: host, credentials, origin, declared size) and answers
only ``POST /api/v1/classify``; every other request goes to Flask unchanged.

The answer is the same as the Flask view's (``routes.classify_answer`` is the
one implementation): the same JSON (Flask's compact, sorted form), the same
status codes and error bodies (``routes.http_error_body`` for werkzeug's 413),
the same limits (the request limit, werkzeug's form limits from Flask's
config), ``Vary: Accept-Encoding`` and gzip for an answer over the compression
threshold when the client accepts it, as Flask-Compress does. An unexpected
error is logged and answered as Flask would: a JSON 500.
"""

from __future__ import annotations

import gzip
import logging
from typing import Callable, Iterable

from flask import Flask
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from ..settings import DashboardSettings
from ..web.compression import LEVEL, MIN_SIZE, accepts_gzip
from . import routes

log = logging.getLogger(__name__)



class ClassifyRoute:
    """WSGI middleware: POST ``/api/v1/classify`` here, everything else to ``app`` (Flask)."""

    def __init__(self, app: Callable, server: Flask, settings: DashboardSettings, client, store) -> None:
        self.app = app
        self.settings, self.client, self.store = settings, client, store
        self.path = routes.PREFIX + "/classify"
        config = server.config
        # Flask's request reads these from the app config; a plain werkzeug request carries them itself
        self.request_class = type("ApiRequest", (Request,), {
            "max_content_length": config["MAX_CONTENT_LENGTH"],
            "max_form_memory_size": config.get("MAX_FORM_MEMORY_SIZE", Request.max_form_memory_size),
            "max_form_parts": config.get("MAX_FORM_PARTS", Request.max_form_parts),
        })
        self.dumps = server.json.dumps  # Flask's provider: sorted keys, its ``default`` for odd types

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        request = self.request_class(environ)
        try:
            body, status = routes.classify_answer(request, self.settings, self.client, self.store)
        except HTTPException as error:  # 413 from reading the body
            body, status = routes.http_error_body(error, self.settings)
        except Exception:  # noqa: BLE001 - answered as Flask answers an unhandled error on an API path
            log.exception("Exception on %s [POST]", self.path)
            body, status = routes.http_error_body(InternalServerError(), self.settings)
        finally:
            request.close()
        return self.respond(environ, start_response, body, status)

    def respond(self, environ, start_response, body: dict, status: int) -> list[bytes]:
        data = (self.dumps(body, separators=(",", ":")) + "\n").encode("utf-8")
        headers = [("Content-Type", "application/json"), ("Vary", "Accept-Encoding")]
        if 200 <= status < 300 and len(data) >= MIN_SIZE and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")):
            data = gzip.compress(data, compresslevel=LEVEL)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}", headers)  # as werkzeug writes it
        return [data]


def install_fast_route(server: Flask, settings: DashboardSettings, client, store) -> ClassifyRoute:
    """Put :class:`ClassifyRoute` in front of ``server.wsgi_app`` (call before the guard wraps it); return it."""
    route = ClassifyRoute(server.wsgi_app, server, settings, client, store)
    server.wsgi_app = route
    return route
