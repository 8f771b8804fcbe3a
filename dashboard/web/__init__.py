"""The web plumbing under every feature: who may call (auth, guard), what a request may carry, and the server.

    auth.py           optional basic auth with roles (viewer, admin); admin_refusal() for admin actions
    guard.py          WSGI middleware: Host, credentials, Origin and body size, before any body is read
    callback_body.py  a malformed Dash callback body is a 400, not a 500
    server.py         waitress set-up (connection limits, a health thread pool) and a bounded SIGTERM
"""
