"""Dashboard users and roles: entries of the users file, password checks, and ``python -m dashboard users add``.

Two roles: ``viewer`` (classify, look at results and history, download the CSV)
and ``admin`` (also clear the shared history and change settings). An entry is
one line of the users file (``--auth-file`` / ``WARMSERVE_DASH_AUTH_FILE``) or
one comma-separated item of ``WARMSERVE_DASH_USERS``:

    alice:admin:scrypt:32768:8:1$salt$hex   hashed (werkzeug's generate_password_hash format), role admin
    bob:viewer:pbkdf2:sha256:600000$s$hex   hashed, role viewer
    carol:scrypt:32768:8:1$salt$hex         hashed, no role given: viewer
    dave:plain password                     a plain password (kept working): always a viewer

``python -m dashboard users add FILE NAME --role admin|viewer`` writes the
first form (password from a prompt, or one line on stdin with
``--password-stdin``), creating FILE with mode 0600; an existing NAME is
refused unless ``--replace``.

With authentication off there is nobody to tell apart; every request then
acts as the anonymous user, whose role is the ``anonymous_role`` setting
(default: admin when the dashboard binds to a loopback address, viewer when it
is exposed to the network).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from werkzeug.security import check_password_hash, generate_password_hash

ADMIN = "admin"
VIEWER = "viewer"
ROLES = (ADMIN, VIEWER)
#: the role of a plain-text password entry (no role can be given for those)
PLAIN_PASSWORD_ROLE = VIEWER
#: where the guard middleware puts the User of the current request in the WSGI environ
ENVIRON_KEY = "warmserve.user"
ANONYMOUS = "anonymous"

#: werkzeug's format: method$salt$hash, method = scrypt[:n:r:p] or pbkdf2:sha256[:iterations]
_HASH = re.compile(r"(?:scrypt(?::\d+){0,3}|pbkdf2:sha(?:256|512|1)(?::\d+)?)\$[^$\s]+\$[0-9a-f]{32,}")
_ROLE_AND_HASH = re.compile(rf"(?P<role>{'|'.join(ROLES)}):(?P<hash>{_HASH.pattern})")


class User(NamedTuple):
    """One dashboard user: a name, a password hash (or a plain password) and a role."""

    name: str
    secret: str
    role: str = PLAIN_PASSWORD_ROLE

    @property
    def hashed(self) -> bool:
        return is_password_hash(self.secret)


#: Authenticator.verify(compute=False) for credentials it has not checked yet
NOT_CHECKED = object()


class UsersError(ValueError):
    """A users-file entry or a users command that cannot be honoured; the message says what was expected."""


def is_password_hash(secret: str) -> bool:
    return bool(_HASH.fullmatch(secret))


def parse_entry(entry: str) -> User:
    """One ``name:[role:]hash`` or ``name:password`` entry; UsersError (never echoing a password) if malformed."""
    name, sep, rest = entry.strip().partition(":")
    name = name.strip()
    if not sep or not name or not rest:
        shown = repr(name) if sep else "an entry without ':'"
        raise UsersError("Expected users as 'name:password' or 'name:role:password-hash' entries, e.g. alice:pw or "
                         f"alice:admin:scrypt:32768:8:1$salt$hash. Received: {shown} with an empty name or password")
    with_role = _ROLE_AND_HASH.fullmatch(rest)
    if with_role:
        return User(name, with_role["hash"], with_role["role"])
    if is_password_hash(rest):
        return User(name, rest, VIEWER)
    return User(name, rest, PLAIN_PASSWORD_ROLE)


def normalize(entry) -> User:
    """A User from a User, a (name, secret) pair or a (name, secret, role) triple (what settings accept)."""
    if isinstance(entry, User):
        user = entry
    elif isinstance(entry, (tuple, list)) and len(entry) in (2, 3):
        user = User(*entry)
    else:
        raise UsersError(f"Expected a user as (name, password) or (name, password, role). Received: {type(entry).__name__}")
    if not isinstance(user.name, str) or not user.name or ":" in user.name or any(c in user.name for c in "\r\n"):
        raise UsersError(f"Expected a user name without ':' or line breaks. Received: user={user.name!r}")
    if not isinstance(user.secret, str) or not user.secret:
        raise UsersError(f"Expected a non-empty password for every user. Received: user={user.name!r} with an empty password")
    if user.role not in ROLES:
        raise UsersError(f"Expected role to be admin or viewer. Received: user={user.name!r}, role={user.role!r}")
    return user


def format_entry(user: User) -> str:
    """The users-file line for a hashed user."""
    return f"{user.name}:{user.role}:{user.secret}"


class Authenticator:
    """Checks a name and password against the users; thread-safe, answers a repeated login from memory.

    Hashed passwords cost tens of milliseconds each (scrypt), and a browser sends
    its credentials with every request, so a verified (name, password) pair is
    remembered under a keyed digest (never the password) for the life of the
    process. Unknown names are checked against a dummy hash, so timing does not
    say which names exist. At most ``HASHING_AT_ONCE`` hashes run at a time, so
    a flood of made-up passwords cannot take every CPU.
    """

    CACHE_SIZE = 1024
    HASHING_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)

    def __init__(self, users) -> None:
        self.users = {user.name: user for user in map(normalize, users)}
        self._key = secrets.token_bytes(32)
        self._known: OrderedDict[bytes, User | None] = OrderedDict()
        self._lock = threading.Lock()
        self._dummy = generate_password_hash(secrets.token_urlsafe(16))
        self._hashing = threading.BoundedSemaphore(self.HASHING_AT_ONCE)

    def verify(self, name: str, password: str, *, compute: bool = True):
        """The User, or None for a wrong name or password; with compute=False, NOT_CHECKED unless remembered."""
        digest = hmac.new(self._key, name.encode("utf-8", "surrogatepass") + b"\0" +
                          password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        with self._lock:
            if digest in self._known:
                self._known.move_to_end(digest)
                return self._known[digest]
        if not compute:
            return NOT_CHECKED
        user = self._check(name, password)
        with self._lock:
            self._known[digest] = user
            while len(self._known) > self.CACHE_SIZE:
                self._known.popitem(last=False)
        return user

    def _check(self, name: str, password: str) -> User | None:
        user = self.users.get(name)
        if user is None:
            with self._hashing:
                check_password_hash(self._dummy, password)
            return None
        if user.hashed:
            with self._hashing:
                return user if check_password_hash(user.secret, password) else None
        ok = hmac.compare_digest(user.secret.encode("utf-8", "surrogatepass"), password.encode("utf-8", "surrogatepass"))
        return user if ok else None


def request_user(default: User | None = None) -> User | None:
    """The User the guard middleware attached to the current Flask request (None outside a request)."""
    import flask

    if not flask.has_request_context():
        return default
    return flask.request.environ.get(ENVIRON_KEY, default)


def add_user(path: Path, name: str, password: str, role: str, *, replace: bool = False) -> User:
    """Write ``name:role:hash`` to the users file (created 0600); UsersError for a duplicate name unless replace."""
    if not password:
        raise UsersError("Expected a non-empty password. Received: an empty password")
    user = normalize(User(name, generate_password_hash(password), role))
    path = Path(path).expanduser()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = []
    for line in lines:
        existing = line.strip().partition(":")[0].strip()
        if line.strip() and not line.strip().startswith("#") and existing == name:
            if not replace:
                raise UsersError(f"Expected a new user name (or --replace). Received: {name!r}, already in {str(path)!r}")
            continue
        kept.append(line)
    kept.append(format_entry(user))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(kept) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return user
