"""API key management with an audit trail (used by `medcode keys ...` and the admin endpoints)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from medcode.serving.auth import CreatedKey, KeyInfo, Principal, create_key, list_keys, revoke_key
from medcode.serving.errors import NotFound
from medcode.serving.services import audit


def create(session: Session, actor: Principal, role: str, name: str | None = None) -> CreatedKey:
    created = create_key(session, role, name)
    audit.record(
        session,
        actor,
        "api_key.created",
        "api_key",
        created.key_id,
        after={"key_id": created.key_id, "name": created.name, "role": created.role},
    )
    session.commit()
    return created


def revoke(session: Session, actor: Principal, key_id: str) -> KeyInfo:
    info = revoke_key(session, key_id)
    if info is None:
        raise NotFound(f"no API key {key_id!r}", code="key_not_found")
    audit.record(
        session,
        actor,
        "api_key.revoked",
        "api_key",
        key_id,
        before={"revoked": False},
        after={"revoked": True, "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None},
    )
    session.commit()
    return info


def all_keys(session: Session) -> list[KeyInfo]:
    keys = list_keys(session)
    session.rollback()
    return keys
