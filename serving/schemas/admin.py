"""Admin schemas: API keys, model reloads and health."""

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
    workers: str = "this process"
    """Who reloads: "all" (PostgreSQL: this process now, every other worker on its next model poll, within
    `followers_within_seconds`) or "this process" (SQLite runs one process)."""
    generation: int | None = None
    """The shared reload generation this request asked for (/health shows each worker's)."""
    followers_within_seconds: float | None = None


class TrainingStatusPublic(BaseModel):
    """The first-run background training of the default model (its status file under MEDCODE_HOME)."""

    state: str
    """running, succeeded, failed, interrupted (stopped, or its process is gone), or unavailable (no data)."""
    step: str | None = None
    """The training's latest progress line, the outcome, or why nothing trains."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pid: int | None = None
    model_version: str | None = None
    """The model it trained (when it succeeded)."""
    promoted: bool | None = None
    """Whether the promotion gate made it the champion (the service then switches to it)."""
    error: str | None = None


class HealthPublic(BaseModel):
    status: str
    """ok; loading while the model loads (503); degraded when the database does not answer or the model
    failed to load (503)."""
    db: str
    model_version: str | None
    code_set_version: str | None
    model_ref: str
    model_loaded_at: datetime | None = None
    model_generation: int | None = None
    """The shared reload generation this worker's model was loaded under: after an admin reload every worker
    of a `medcode serve --workers N` on PostgreSQL reports the reload's `generation`."""
    pid: int | None = None
    """The answering server process: with `model_loaded_at`, tells the workers of one service apart."""
    model_state: str = "ready"
    """ready, loading, failed or unloaded (loads on first use)."""
    training: TrainingStatusPublic | None = None
    """The first-run background training, when a start has run one (or said why it could not)."""
