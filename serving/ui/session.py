"""The coder UI's session: a signed cookie naming the API key a coder signed in with, plus CSRF tokens.

The cookie holds the key's id (never the key itself), its role and a per-session CSRF token, signed with
`Settings.session_secret` (itsdangerous, time-stamped). It is HttpOnly, SameSite=Strict and Secure over
https. Every state-changing request made with the cookie must carry the same CSRF token in the
`X-CSRF-Token` header (the UI's JavaScript reads it from a <meta> tag) or, for plain HTML forms, in a
`csrf_token` field.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from medcode.settings import get_settings

SESSION_COOKIE = "medcode_session"
SIGNIN_COOKIE = "medcode_signin"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE_SECONDS = 12 * 3600
SIGNIN_MAX_AGE_SECONDS = 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_SESSION_SALT = "medcode-ui-session.v1"
_SIGNIN_SALT = "medcode-ui-signin.v1"


@dataclass(frozen=True)
class UiSession:
    """What the session cookie says: who signed in, with which role, and the session's CSRF token."""

    key_id: str
    name: str
    role: str
    csrf: str
    issued_at: float


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().session_secret, salt=salt)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def encode_session(key_id: str, name: str, role: str) -> tuple[str, UiSession]:
    """A fresh session (with a new CSRF token) and its signed cookie value."""
    session = UiSession(key_id=key_id, name=name, role=role, csrf=new_token(), issued_at=time.time())
    payload = {"k": session.key_id, "n": session.name, "r": session.role, "c": session.csrf}
    return _serializer(_SESSION_SALT).dumps(payload), session


def decode_session(value: str | None) -> UiSession | None:
    """The session a cookie value carries; None when absent, tampered with or expired."""
    if not value:
        return None
    try:
        payload, signed_at = _serializer(_SESSION_SALT).loads(
            value, max_age=SESSION_MAX_AGE_SECONDS, return_timestamp=True
        )
    except BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    try:
        return UiSession(
            key_id=str(payload["k"]),
            name=str(payload["n"]),
            role=str(payload["r"]),
            csrf=str(payload["c"]),
            issued_at=signed_at.timestamp(),
        )
    except KeyError:
        return None


def session_of(request: Request) -> UiSession | None:
    return decode_session(request.cookies.get(SESSION_COOKIE))


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def csrf_ok(request: Request, session: UiSession, form_token: str | None = None) -> bool:
    """Safe methods pass; any other needs the session's CSRF token in the header (or the form field)."""
    if request.method.upper() in SAFE_METHODS:
        return True
    return tokens_match(session.csrf, request.headers.get(CSRF_HEADER) or form_token)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request)
    )


def set_signin_cookie(response: Response, request: Request, token: str) -> None:
    """The sign-in form's token (double submit: this signed cookie plus the same value in the form)."""
    response.set_cookie(
        SIGNIN_COOKIE,
        _serializer(_SIGNIN_SALT).dumps(token),
        max_age=SIGNIN_MAX_AGE_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_signin_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SIGNIN_COOKIE, path="/ui", httponly=True, samesite="strict", secure=is_https(request)
    )


def signin_token_ok(request: Request, form_token: str | None) -> bool:
    cookie = request.cookies.get(SIGNIN_COOKIE)
    if not cookie:
        return False
    try:
        expected = _serializer(_SIGNIN_SALT).loads(cookie, max_age=SIGNIN_MAX_AGE_SECONDS)
    except BadSignature:
        return False
    return isinstance(expected, str) and tokens_match(expected, form_token)
