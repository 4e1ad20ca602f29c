"""API keys and roles.

A key reads `mck_<key_id>_<secret>`. Only the sha256 of the whole key is stored, with its public
`key_id`; the key itself is shown once, when it is created. Roles grant permissions (ROLE_PERMISSIONS);
every endpoint but /health requires one permission.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from medcode.data.errors import InvalidInputError
from medcode.serving.orm import ApiKey, UiSessionRow, utcnow
from medcode.serving.roles import ROLES as ROLES  # re-exported: routers and tests import them from here
from medcode.serving.roles import Role as Role

KEY_PREFIX = "mck"


class Permission(StrEnum):
    SUGGEST = "suggest"
    ENCOUNTERS_WRITE = "encounters:write"
    ENCOUNTERS_READ = "encounters:read"
    REVIEW = "review"
    CODES = "codes"
    FHIR = "fhir"
    AUDIT = "audit"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "integration": frozenset(
        {
            Permission.SUGGEST,
            Permission.ENCOUNTERS_WRITE,
            Permission.ENCOUNTERS_READ,
            Permission.FHIR,
            Permission.CODES,
        }
    ),
    "coder": frozenset({Permission.REVIEW, Permission.ENCOUNTERS_READ, Permission.CODES}),
    "scientist": frozenset({Permission.ENCOUNTERS_READ, Permission.CODES}),
    "admin": frozenset(Permission),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id, its name and its role."""

    key_id: str
    name: str
    role: str

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())


SYSTEM_PRINCIPAL = Principal(key_id="system", name="medcode", role="admin")
"""The actor of changes made by the service itself or the command line (e.g. key management)."""


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    name: str
    role: str
    key: str
    """The raw key: shown once, never stored."""


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


_KEY_ID_RE = re.compile(r"[0-9a-f]{1,32}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")


def claimed_key_id(raw_key: str) -> str | None:
    """The key_id of a well-formed key (`mck_<hex id>_<url-safe secret>`), else None."""
    parts = raw_key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    if not _KEY_ID_RE.fullmatch(parts[1]) or not _SECRET_RE.fullmatch(parts[2]):
        return None
    return parts[1]


KeyCheck = Literal["ok", "malformed", "unknown", "revoked", "wrong_secret"]


def verify_key(session: Session, raw_key: str) -> tuple[Principal | None, KeyCheck]:
    """The principal of a valid, unrevoked key, or None and why not (constant-time hash compare)."""
    key_id = claimed_key_id(raw_key)
    if key_id is None:
        return None, "malformed"
    row = session.get(ApiKey, key_id)
    if row is None:
        return None, "unknown"
    if not hmac.compare_digest(row.key_hash, hash_key(raw_key.strip())):
        return None, "wrong_secret"
    if row.revoked_at is not None:
        return None, "revoked"
    return Principal(key_id=row.key_id, name=row.name, role=row.role), "ok"


def authenticate_key(session: Session, raw_key: str) -> Principal | None:
    """The principal of a valid, unrevoked key; None for anything else."""
    return verify_key(session, raw_key)[0]


def create_key(session: Session, role: str, name: str | None = None) -> CreatedKey:
    """Store a new key's hash and return the raw key (the caller commits, and shows it once)."""
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    key_id = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    label = (name or f"{role}-{key_id}").strip()[:200] or f"{role}-{key_id}"
    session.add(ApiKey(key_id=key_id, name=label, role=role, key_hash=hash_key(raw), created_at=utcnow()))
    session.flush()
    return CreatedKey(key_id=key_id, name=label, role=role, key=raw)


def list_keys(session: Session) -> list[KeyInfo]:
    rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.key_id))
    return [KeyInfo(r.key_id, r.name, r.role, r.created_at, r.revoked_at) for r in rows]


def revoke_key(session: Session, key_id: str) -> KeyInfo | None:
    """Mark a key revoked, and its UI sessions ended (idempotent); None when no such key. The caller
    commits."""
    row = session.get(ApiKey, key_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.execute(
            update(UiSessionRow)
            .where(UiSessionRow.key_id == key_id, UiSessionRow.revoked_at.is_(None))
            .values(revoked_at=row.revoked_at)
        )
        session.flush()
    return KeyInfo(row.key_id, row.name, row.role, row.created_at, row.revoked_at)
