"""Typed errors shared by the backend, the client and the dashboard.

Every error has a stable wire ``code`` (sent in ``{"ok": false, "error": {...}}``
replies) and a human message that the dashboard can show as it is. The client
turns an error reply back into the matching exception class with
:func:`error_from_code`.
"""

from __future__ import annotations


class BackendError(Exception):
    """Base class: something went wrong talking to, or inside, the model backend."""

    code = "internal"
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_wire(self) -> dict:
        return {"code": self.code, "message": self.message}


class BadRequest(BackendError):
    """The request itself is malformed (header, op, frames)."""

    code = "bad_request"
    http_status = 400


class BadImage(BackendError):
    """The payload is not an image Pillow can decode (empty, truncated, unknown format)."""

    code = "bad_image"
    http_status = 400


class TooLarge(BackendError):
    """The payload is over the byte limit, or the image over the pixel limit."""

    code = "too_large"
    http_status = 413


class Overloaded(BackendError):
    """The backend's queue is full; try again shortly."""

    code = "overloaded"
    http_status = 503


class NotReady(BackendError):
    """The backend is up but its model is not loaded and warm yet."""

    code = "not_ready"
    http_status = 503


class InternalError(BackendError):
    """The backend failed while handling a valid request (e.g. inference raised)."""

    code = "internal"
    http_status = 500


class BackendUnavailable(BackendError):
    """No backend answers at the configured address (not started, crashed, wrong address)."""

    code = "unavailable"
    http_status = 503


class BadReply(BackendError):
    """The backend (or something at its address) sent a reply that is not a valid reply frame."""

    code = "bad_reply"
    http_status = 502


class BackendTimeout(BackendError):
    """The backend accepted the request but did not reply in time (after retries)."""

    code = "timeout"
    http_status = 504


class ModelLoadError(BackendError):
    """A model could not be built or its weights could not be loaded; the message says how to fix it."""

    code = "model_load"
    http_status = 500


class CheckpointRefused(ModelLoadError):
    """A checkpoint's pickle names something outside the reader's allow-list."""

    code = "checkpoint_refused"


_BY_CODE = {
    cls.code: cls
    for cls in (
        BadRequest,
        BadImage,
        TooLarge,
        Overloaded,
        NotReady,
        InternalError,
        BackendUnavailable,
        BadReply,
        BackendTimeout,
        ModelLoadError,
        CheckpointRefused,
    )
}


def error_from_code(code: str, message: str) -> BackendError:
    """Rebuild the typed error for a wire ``code``; unknown codes become :class:`BackendError`."""
    cls = _BY_CODE.get(code)
    if cls is None:
        err = BackendError(message)
        err.code = str(code)
        return err
    return cls(message)
