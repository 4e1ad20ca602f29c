"""The UI session as an API principal: the JSON API accepts either a Bearer key or this session cookie.

`principal_from_cookie` is the hook `serving.deps.get_current_principal` calls when a request has no
Authorization header. The cookie names a key id; the key is looked up on every request, so revoking the
key ends its UI sessions too. A state-changing request must carry the session's CSRF token in the
`X-CSRF-Token` header, else it is refused (403) before anything runs.
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request

from medcode.serving.auth import Principal
from medcode.serving.errors import Forbidden
from medcode.serving.orm import ApiKey
from medcode.serving.ui.session import UiSession, csrf_ok, session_of


def principal_of_session(db: Session, ui_session: UiSession) -> Principal | None:
    """The principal behind a session: its key must still exist, be unrevoked and keep its role."""
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
