"""Check the JSON body of Dash's callback route (POST /_dash-update-component) before Dash dispatches it.

Dash indexes the body without checking it, so ``{}``, ``null``, ``[]``, text or
wrong types end in a 500. ``install_callback_body_check`` answers those with a
400 ``{"error": {"code": "bad_request", "message": ...}}`` instead. It runs
after the guard (so only for authenticated requests) and parses the body once:
Flask caches the parsed JSON, and Dash's dispatcher reuses it.
"""

from __future__ import annotations

from flask import Flask, jsonify, request

CALLBACK_PATH = "/_dash-update-component"


def check_callback_body(body: object, callback_map: dict) -> str | None:
    """None if Dash can dispatch ``body``; otherwise what was wrong, as 'Expected ... Received: ...'."""
    if not isinstance(body, dict):
        return f"Expected a JSON object with output, inputs and state. Received: {_kind(body)}"
    output = body.get("output")
    if not isinstance(output, str) or output not in callback_map:
        shown = repr(output[:80]) if isinstance(output, str) else _kind(output)
        return f"Expected output to name one of this app's callbacks. Received: output={shown}"
    callback = callback_map[output]
    for key in ("inputs", "state"):
        items = body.get(key, [])
        if not isinstance(items, list):
            return f"Expected {key} to be a list. Received: {_kind(items)}"
        for item in items:
            problem = _check_dependency(key, item)
            if problem:
                return problem
    expected = _count(callback.get("inputs_state_indices"))
    given = len(body.get("inputs", [])) + len(body.get("state", []))
    if expected is not None and given != expected:
        return f"Expected {expected} inputs and states for {output[:80]!r}. Received: {given}"
    outputs = body.get("outputs", [])
    if not isinstance(outputs, (list, dict)):
        return f"Expected outputs to be a list or an object. Received: {_kind(outputs)}"
    if isinstance(outputs, list):
        for item in outputs:
            problem = _check_dependency("outputs", item, value=False)
            if problem:
                return problem
        expected_outputs = _count(callback.get("outputs_indices"))
        if outputs and expected_outputs is not None and len(outputs) != expected_outputs:
            return f"Expected {expected_outputs} outputs for {output[:80]!r}. Received: {len(outputs)}"
    else:
        problem = _check_dependency("outputs", outputs, value=False)
        if problem:
            return problem
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return f"Expected changedPropIds to be a list of strings. Received: {_kind(changed)}"
    return None


def _check_dependency(key: str, item: object, value: bool = True) -> str | None:
    if isinstance(item, list):  # pattern-matching (ALL / ALLSMALLER): a list of dependencies
        for inner in item:
            if isinstance(inner, list):
                return f"Expected {key} entries nested at most one level. Received: a list of lists"
            problem = _check_dependency(key, inner, value)
            if problem:
                return problem
        return None
    if not isinstance(item, dict):
        return f"Expected each of {key} to be an object with id and property. Received: {_kind(item)}"
    if not isinstance(item.get("id"), (str, dict)) or not isinstance(item.get("property"), str):
        return f"Expected each of {key} to have an id (string or object) and a property (string). Received: {_kind(item)}"
    if isinstance(item["id"], dict) and not all(isinstance(k, str) for k in item["id"]):
        return f"Expected a pattern-matching id with string keys in {key}. Received: {_kind(item['id'])}"
    return None


def _count(indices: object) -> int | None:
    """How many flat entries a Dash grouping of indices refers to (None if unknown)."""
    if indices is None:
        return None
    if isinstance(indices, int):
        return 1
    if isinstance(indices, (list, tuple)):
        return sum(_count(i) or 0 for i in indices)
    if isinstance(indices, dict):
        return sum(_count(i) or 0 for i in indices.values())
    return None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def install_callback_body_check(server: Flask, callback_map: dict) -> None:
    """Answer a malformed body on Dash's callback route with 400 before Dash sees it."""

    @server.before_request
    def check_dash_callback_body():
        if request.method != "POST" or not request.path.endswith(CALLBACK_PATH):
            return None
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            body = None
        problem = check_callback_body(body, callback_map)
        if problem is None:
            return None
        return jsonify({"error": {"code": "bad_request", "message": problem}}), 400
