"""The snippets themselves: plain strings for a base URL, so they can be tested (and run) without a browser.

The URL is the one the browser shows (its ``location.origin``), which is the
address a user on that machine reaches this server by, also behind a proxy
that keeps the Host header. With auth on, the snippets carry a NAME:PASSWORD
placeholder for the user to fill in; nothing secret is ever put in them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..api.routes import PREFIX

EXAMPLE_FILE = "photo.jpg"


def base_url(href: str | None) -> str | None:
    """``scheme://host[:port]`` of a page URL; None unless it is http(s) with a host."""
    if not href:
        return None
    parts = urlsplit(href)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def curl_multipart(base: str, auth: bool, image: str = EXAMPLE_FILE) -> str:
    user = " -u NAME:PASSWORD" if auth else ""
    return f"curl{user} -F image=@{image} {base}{PREFIX}/classify"


def curl_raw(base: str, auth: bool, image: str = EXAMPLE_FILE) -> str:
    user = " -u NAME:PASSWORD" if auth else ""
    return (f"curl{user} --data-binary @{image} -H 'Content-Type: application/octet-stream' "
            f"'{base}{PREFIX}/classify?name={image}'")


def python_requests(base: str, auth: bool, image: str = EXAMPLE_FILE) -> str:
    auth_arg = ', auth=("NAME", "PASSWORD")' if auth else ""
    return "\n".join([
        "import requests",
        "",
        f'with open("{image}", "rb") as f:',
        f'    r = requests.post("{base}{PREFIX}/classify", files={{"image": f}}{auth_arg}, timeout=30)',
        "body = r.json()",
        "if not r.ok:  # every error is {\"error\": {\"code\", \"message\"}}; the codes are in /api/v1/openapi.json",
        '    raise SystemExit(f"{r.status_code} {body[\'error\'][\'code\']}: {body[\'error\'][\'message\']}")',
        'for p in body["predictions"]:',
        '    print(f"{p[\'label\']}: {p[\'p\']:.1%}")',
        'print(f"{body[\'roundtrip_ms\']:.1f} ms")',
    ])
