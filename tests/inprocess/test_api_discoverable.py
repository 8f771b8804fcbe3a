"""The API describes itself: every /api/v1 route the app serves is in the OpenAPI document it serves."""

from __future__ import annotations

from openapi_spec_validator import validate

from dashboard.app import create_app, stop_app
from tests.support.dash import StubClient


def test_every_served_api_route_is_documented_with_its_method(dash_settings) -> None:
    app = create_app(dash_settings(), StubClient())
    try:
        http = app.server.test_client()
        document = http.get("/api/v1/openapi.json", base_url="http://localhost:8050").get_json()
        validate(document)
        assert document["servers"] == [{"url": "http://localhost:8050"}]
        served = {(rule.rule, method.lower()) for rule in app.server.url_map.iter_rules()
                  if rule.rule.startswith("/api/v1/") and "<" not in rule.rule
                  for method in rule.methods - {"HEAD", "OPTIONS"}}
        documented = {(path, method) for path, item in document["paths"].items() for method in item}
        assert served == documented
        assert http.post("/api/v1/openapi.json", base_url="http://localhost:8050").status_code == 405
    finally:
        stop_app(app)
