"""POST /api/v1/classify answered at the WSGI layer, in front of Flask: the API's hot path without Flask's machinery.

Why: for every request Flask builds a request context, opens a (signed-cookie)
session, matches the URL against Dash's routes, runs Dash's and the
dashboard's before/after-request hooks (setup, callback-body check,
compression) and builds a Response: work the classify answer never needs.
``ClassifyRoute`` wraps ``Flask.wsgi_app`` (inside the guard, which still vets
every request first: host, credentials, origin, declared size) and answers
only ``POST /api/v1/classify``; every other request goes to Flask unchanged.

A body of the plain shape every HTTP library sends (``Content-Type:
multipart/form-data; boundary=TOKEN``, a declared length within the limit) is
read straight from ``wsgi.input`` and searched by api/multipart.py, without a
werkzeug ``Request`` (its header parsing and stream wrappers); any other body
(raw image, chunked, a quoted or unusual boundary, a body multipart.py leaves
to werkzeug) goes through the ``Request`` path as before, with the same bytes.

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
import io
import json
import logging
import re
from typing import Callable, Iterable

from flask import Flask
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES
from flask.json.provider import DefaultJSONProvider
from werkzeug.wrappers import Request

from model_backend.errors import BackendError

from ..classify.uploads import Upload
from ..settings import DashboardSettings
from ..web.compression import LEVEL, MIN_SIZE, accepts_gzip
from . import routes
from .multipart import UnusualBody, find_file_part

log = logging.getLogger(__name__)

#: the Content-Type read without werkzeug: the media type in any case, then exactly ``; boundary=`` and an unquoted
#: token of the characters werkzeug's header parser reads the same way (anything else: werkzeug parses it)
PLAIN_MULTIPART = re.compile(r"(?i:multipart/form-data); boundary=([0-9A-Za-z_-]{1,70})")


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
        self.encode = json_encoder(server)

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        request = None
        try:
            try:
                upload = self.plain_multipart_upload(environ)
            except BackendError as error:  # a plain body without the file field "image"
                body, status = routes.refused_answer(error)
            else:
                if upload is not None:
                    body, status = routes.upload_answer(upload, self.settings, self.client, self.store)
                else:
                    request = self.request_class(environ)
                    body, status = routes.classify_answer(request, self.settings, self.client, self.store)
        except HTTPException as error:  # 413 from reading the body
            body, status = routes.http_error_body(error, self.settings)
        except Exception:  # noqa: BLE001 - answered as Flask answers an unhandled error on an API path
            log.exception("Exception on %s [POST]", self.path)
            body, status = routes.http_error_body(InternalServerError(), self.settings)
        finally:
            if request is not None:
                request.close()
        return self.respond(environ, start_response, body, status)

    def plain_multipart_upload(self, environ) -> Upload | None:
        """The image of a plain multipart body, read without werkzeug; None: let the ``Request`` path read it.

        BadRequest (a BackendError) when the body is plain but has no file field ``image``. A body it reads and
        then leaves to werkzeug is put back into ``wsgi.input``, so the ``Request`` path reads the same bytes.
        """
        match = PLAIN_MULTIPART.fullmatch(environ.get("CONTENT_TYPE", ""))
        declared = environ.get("CONTENT_LENGTH", "")
        if match is None or not (declared.isascii() and declared.isdigit()):
            return None
        length, limit = int(declared), self.request_class.max_content_length
        if limit is not None and length > limit:
            return None  # werkzeug refuses it (413), as before
        data = environ["wsgi.input"].read(length) if length else b""
        try:
            if len(data) != length:
                raise UnusualBody("truncated")  # werkzeug says what a short body is
            found = find_file_part(data, match.group(1), routes.IMAGE_FIELD, max_parts=self.request_class.max_form_parts,
                                   max_memory=self.request_class.max_form_memory_size)
        except UnusualBody:
            environ["wsgi.input"] = io.BytesIO(data)
            return None
        return routes.upload_from_fields(found)

    def respond(self, environ, start_response, body: dict, status: int) -> list[bytes]:
        data = (self.encode(body) + "\n").encode("utf-8")
        headers = [("Content-Type", "application/json"), ("Vary", "Accept-Encoding")]
        if 200 <= status < 300 and len(data) >= MIN_SIZE and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")):
            data = gzip.compress(data, compresslevel=LEVEL)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}", headers)  # as werkzeug writes it
        return [data]


def json_encoder(server: Flask) -> Callable[[dict], str]:
    """``body -> JSON text`` as Flask's provider writes it in compact form (sorted keys, its ``default`` for odd types,
    its ``ensure_ascii``): one encoder made once instead of one per answer; the provider itself when it is not Flask's."""
    provider = server.json
    if type(provider) is not DefaultJSONProvider:
        return lambda body: provider.dumps(body, separators=(",", ":"))
    return json.JSONEncoder(default=provider.default, ensure_ascii=provider.ensure_ascii, sort_keys=provider.sort_keys,
                            separators=(",", ":")).encode


def install_fast_route(server: Flask, settings: DashboardSettings, client, store) -> ClassifyRoute:
    """Put :class:`ClassifyRoute` in front of ``server.wsgi_app`` (call before the guard wraps it); return it."""
    route = ClassifyRoute(server.wsgi_app, server, settings, client, store)
    server.wsgi_app = route
    return route
