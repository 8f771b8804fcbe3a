"""The "Use via API" snippets: built for the URL the browser shows, with an auth placeholder only when auth is on."""

from __future__ import annotations

import ast

import pytest

from dashboard.api_panel.snippets import base_url, curl_multipart, curl_raw, python_requests


@pytest.mark.parametrize(("href", "base"), [
    ("http://127.0.0.1:8050/", "http://127.0.0.1:8050"),
    ("https://dash.example.org/some/page?x=1#top", "https://dash.example.org"),
    ("http://[::1]:9000/", "http://[::1]:9000"),
    ("javascript:alert(1)", None),
    ("file:///etc/passwd", None),
    ("", None),
    (None, None),
])
def test_base_url_is_the_origin_of_an_http_page(href, base) -> None:
    assert base_url(href) == base


def test_snippets_name_the_server_and_the_route() -> None:
    base = "http://10.0.0.5:8050"
    assert curl_multipart(base, False) == "curl -F image=@photo.jpg http://10.0.0.5:8050/api/v1/classify"
    assert "'http://10.0.0.5:8050/api/v1/classify?name=photo.jpg'" in curl_raw(base, False)
    code = python_requests(base, False)
    ast.parse(code)  # valid Python
    assert '"http://10.0.0.5:8050/api/v1/classify"' in code and "auth=" not in code


def test_with_auth_the_snippets_carry_a_placeholder_never_a_secret() -> None:
    base = "http://h:1"
    assert "-u NAME:PASSWORD" in curl_multipart(base, True) and "-u NAME:PASSWORD" in curl_raw(base, True)
    assert 'auth=("NAME", "PASSWORD")' in python_requests(base, True)
