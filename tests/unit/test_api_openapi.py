"""The OpenAPI document: valid OpenAPI 3.1, and complete (every error code, stage and history column)."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from dashboard.api.openapi import PREFIX, error_codes, openapi_document
from dashboard.history.store import COLUMNS
from dashboard.settings import DashboardSettings
from model_backend import errors
from model_backend.protocol import STAGES


def document(url: str = "http://dash.example:8050/") -> dict:
    return openapi_document(DashboardSettings(), url, 1000)


def test_the_document_is_valid_openapi_3_1_and_names_this_server() -> None:
    doc = document()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "http://dash.example:8050"}]
    assert set(doc["paths"]) == {f"{PREFIX}/classify", f"{PREFIX}/health", f"{PREFIX}/history", f"{PREFIX}/openapi.json"}
    json.dumps(doc)  # plain JSON all the way down


def test_every_error_a_request_can_end_in_is_listed_with_its_status() -> None:
    listed = {code: status for code, status, _ in error_codes()}
    for cls in (errors.BadRequest, errors.BadImage, errors.TooLarge, errors.Overloaded, errors.NotReady,
                errors.InternalError, errors.BackendUnavailable, errors.BadReply, errors.BackendTimeout):
        assert listed[cls.code] == cls.http_status
    for code in ("unauthorized", "cross_origin", "bad_host", "not_found", "method_not_allowed"):
        assert code in listed
    enum = document()["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
    assert set(enum) == set(listed)
    classify = document()["paths"][f"{PREFIX}/classify"]["post"]["responses"]
    assert "`timeout`" in classify["504"]["description"] and "`overloaded`" in classify["503"]["description"]


def test_the_schemas_follow_the_code_they_describe() -> None:
    schemas = document()["components"]["schemas"]
    assert set(schemas["ClassifyResult"]["properties"]["timings_ms"]["properties"]) == set(STAGES)
    assert set(schemas["HistoryRecord"]["properties"]) == set(COLUMNS)
    raw_name = {p["name"] for p in document()["paths"][f"{PREFIX}/classify"]["post"]["parameters"]}
    assert raw_name == {"name", "X-Image-Name"}


def test_a_history_records_types_are_the_tables() -> None:
    properties = document()["components"]["schemas"]["HistoryRecord"]["properties"]
    assert properties["ok"] == {"type": "integer"}  # stored 0/1, as /api/v1/history returns it
    assert properties["ts"] == {"type": "number"} and properties["image"] == {"type": ["string", "null"]}
