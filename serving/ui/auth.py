"""The UI session as an API principal: the JSON API accepts either a Bearer key or this session cookie.

`principal_from_cookie` is the hook `serving.deps.get_current_principal` calls when a request has no
Authorization header. The cookie names a server-side session (`ui_sessions`) and a key id; both are looked
up on every request, so signing out ends the session (a copied cookie included) and revoking the key ends
all of its sessions. A state-changing request must carry the session's CSRF token in the `X-CSRF-Token`
header, else it is refused (403) before anything runs.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session
from starlette.requests import Request

from medcode.serving.auth import Principal
from medcode.serving.errors import Forbidden
from medcode.serving.orm import ApiKey, UiSessionRow, utcnow
from medcode.serving.ui.session import SESSION_MAX_AGE_SECONDS, UiSession, csrf_ok, session_of


def start_session(db: Session, ui_session: UiSession) -> None:
    """Store a new session (the caller commits, then sets its cookie)."""
    now = utcnow()
    db.add(
        UiSessionRow(
            session_id=ui_session.session_id,
            key_id=ui_session.key_id,
            created_at=now,
            expires_at=now + timedelta(seconds=SESSION_MAX_AGE_SECONDS),
            revoked_at=None,
        )
    )
    db.flush()


def end_session(db: Session, ui_session: UiSession) -> None:
    """Mark the session ended: its cookie, wherever it was copied, no longer signs anyone in."""
    row = db.get(UiSessionRow, ui_session.session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        db.flush()


def principal_of_session(db: Session, ui_session: UiSession) -> Principal | None:
    """The principal behind a session: the session must be live, and its key exist, be unrevoked and
    keep its role."""
    stored = db.get(UiSessionRow, ui_session.session_id)
    if (
        stored is None
        or stored.key_id != ui_session.key_id
        or stored.revoked_at is not None
        or stored.expires_at <= utcnow()
    ):
        return None
    row = db.get(ApiKey, ui_session.key_id)
    if row is None or row.revoked_at is not None or row.role != ui_session.role:
        return None
    return Principal(key_id=row.key_id, name=row.name, role=row.role)


def principal_from_cookie(request: Request, db: Session) -> Principal | None:
    """The signed-in principal of a UI request; None without a valid session.

    Raises Forbidden when the session is valid but a state-changing request lacks its CSRF token.
    """
    ui_session = session_of(request)
    if ui_session is None:
        return None
    principal = principal_of_session(db, ui_session)
    if principal is None:
        return None
    if not csrf_ok(request, ui_session):
        raise Forbidden("missing or invalid CSRF token (X-CSRF-Token header)", code="csrf_failed")
    return principal
