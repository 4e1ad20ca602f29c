"""The coder UI's session: a signed cookie naming a server-side session, plus CSRF tokens.

The cookie holds a session id, the key's id (never the key itself), its role and a per-session CSRF
token, signed (itsdangerous, time-stamped) with the app's session secret: `MEDCODE_SESSION_SECRET` (at
least 32 characters) or, when none is set, a random secret the service writes once to
`MEDCODE_HOME/session_secret` (mode 0600) and reads on every later start. The session itself is a row
(`ui_sessions`) that sign-out and key revocation end, so a copied cookie dies with it. The cookie is
HttpOnly, SameSite=Strict and Secure over https. Every state-changing request made with the cookie must
carry the same CSRF token in the `X-CSRF-Token` header (the UI's JavaScript reads it from a <meta> tag)
or, for plain HTML forms, in a `csrf_token` field.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from medcode.data.errors import InvalidInputError

SESSION_COOKIE = "medcode_session"
SIGNIN_COOKIE = "medcode_signin"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE_SECONDS = 12 * 3600
SIGNIN_MAX_AGE_SECONDS = 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MIN_SECRET_LENGTH = 32
SECRET_FILE = "session_secret"
PUBLISHED_DEFAULT_SECRET = "development-only-secret"
"""The settings' old default: a published constant, never used to sign anything."""

_SESSION_SALT = "medcode-ui-session.v2"
_SIGNIN_SALT = "medcode-ui-signin.v1"


@dataclass(frozen=True)
class UiSession:
    """What the session cookie says: which server-side session, who signed in, with which role, and
    the session's CSRF token."""

    session_id: str
    key_id: str
    name: str
    role: str
    csrf: str
    issued_at: float


def resolve_session_secret(configured: str | None, home: Path) -> str:
    """The secret that signs UI cookies: the configured one (at least 32 characters), else the one
    generated into `home` on the first start (created 0600, atomically, so two starting servers agree)."""
    if configured and configured != PUBLISHED_DEFAULT_SECRET:
        if len(configured) < MIN_SECRET_LENGTH:
            raise InvalidInputError(
                f"MEDCODE_SESSION_SECRET has {len(configured)} characters; use at least {MIN_SECRET_LENGTH}"
                " (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'), or unset it to"
                f" have one generated into {home / SECRET_FILE}"
            )
        return configured
    path = home / SECRET_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        temporary = home / f".{SECRET_FILE}.{secrets.token_hex(8)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                os.link(temporary, path)
        finally:
            temporary.unlink()
    secret = path.read_text().strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise InvalidInputError(
            f"{path} holds a session secret shorter than {MIN_SECRET_LENGTH} characters; delete the file"
            " to have a new one generated (UI users sign in again)"
        )
    return secret


def secret_of(request: Request) -> str:
    secret: str = request.app.state.session_secret
    return secret


def _serializer(secret: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=salt)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_session(key_id: str, name: str, role: str) -> UiSession:
    """A fresh session with a new id and CSRF token (the caller stores it, then sets its cookie)."""
    return UiSession(
        session_id=secrets.token_urlsafe(32),
        key_id=key_id,
        name=name,
        role=role,
        csrf=new_token(),
        issued_at=time.time(),
    )


def encode_session(secret: str, session: UiSession) -> str:
    """The signed cookie value of a session."""
    payload = {"s": session.session_id, "k": session.key_id, "n": session.name, "r": session.role}
    return _serializer(secret, _SESSION_SALT).dumps(payload | {"c": session.csrf})


def decode_session(secret: str, value: str | None) -> UiSession | None:
    """The session a cookie value carries; None when absent, tampered with or expired."""
    if not value or len(value) > 4096:
        return None
    try:
        payload, signed_at = _serializer(secret, _SESSION_SALT).loads(
            value, max_age=SESSION_MAX_AGE_SECONDS, return_timestamp=True
        )
    except BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    try:
        return UiSession(
            session_id=str(payload["s"]),
            key_id=str(payload["k"]),
            name=str(payload["n"]),
            role=str(payload["r"]),
            csrf=str(payload["c"]),
            issued_at=signed_at.timestamp(),
        )
    except KeyError:
        return None


def session_of(request: Request) -> UiSession | None:
    return decode_session(secret_of(request), request.cookies.get(SESSION_COOKIE))


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def csrf_ok(request: Request, session: UiSession, form_token: str | None = None) -> bool:
    """Safe methods pass; any other needs the session's CSRF token in the header (or the form field)."""
    if request.method.upper() in SAFE_METHODS:
        return True
    return tokens_match(session.csrf, request.headers.get(CSRF_HEADER) or form_token)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int, path: str) -> None:
    """Every UI cookie: HttpOnly, SameSite=Strict, Secure on HTTPS."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, httponly=True, samesite="strict", secure=is_https(request)
    )


def _clear_cookie(response: Response, request: Request, name: str, path: str) -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="strict", secure=is_https(request))


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    _set_cookie(response, request, SESSION_COOKIE, value, SESSION_MAX_AGE_SECONDS, "/")


def clear_session_cookie(response: Response, request: Request) -> None:
    _clear_cookie(response, request, SESSION_COOKIE, "/")


def set_signin_cookie(response: Response, request: Request, token: str) -> None:
    """The sign-in form's token (double submit: this signed cookie plus the same value in the form)."""
    value = _serializer(secret_of(request), _SIGNIN_SALT).dumps(token)
    _set_cookie(response, request, SIGNIN_COOKIE, value, SIGNIN_MAX_AGE_SECONDS, "/ui")


def clear_signin_cookie(response: Response, request: Request) -> None:
    _clear_cookie(response, request, SIGNIN_COOKIE, "/ui")


def signin_token_ok(request: Request, form_token: str | None) -> bool:
    cookie = request.cookies.get(SIGNIN_COOKIE)
    if not cookie:
        return False
    try:
        expected = _serializer(secret_of(request), _SIGNIN_SALT).loads(cookie, max_age=SIGNIN_MAX_AGE_SECONDS)
    except BadSignature:
        return False
    return isinstance(expected, str) and tokens_match(expected, form_token)
