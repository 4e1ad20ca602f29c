"""Admin schemas: API keys and model reloads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from medcode.serving.auth import Role


class KeyCreate(BaseModel):
    role: Role
    name: str | None = Field(None, max_length=200)


class KeyPublic(BaseModel):
    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreatedPublic(BaseModel):
    key_id: str
    name: str
    role: str
    key: str
    """Shown this once; only its hash is stored."""


class KeyListPublic(BaseModel):
    keys: list[KeyPublic]


class ModelReloadPublic(BaseModel):
    reloaded: bool
    version: str
    """The version serving now (the old one when loading failed)."""
    previous_version: str | None
    error: str | None = None


class HealthPublic(BaseModel):
    status: str
    """ok, or degraded when the database does not answer."""
    db: str
    model_version: str | None
    code_set_version: str | None
    model_ref: str
    model_loaded_at: datetime | None = None
