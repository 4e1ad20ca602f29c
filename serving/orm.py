"""The service's tables as SQLAlchemy 2 typed models (the Alembic migrations create exactly these).

Times are stored as naive UTC and read back as aware UTC datetimes (`UTCDateTime`), so that lease
comparisons behave the same on SQLite and PostgreSQL. `decisions` and `audit_events` are append-only:
no code path updates or deletes them, and the migration installs triggers that refuse it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive UTC in the column."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """The public prefix of the key (printed by `medcode keys list`); the secret part is never stored."""
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """sha256 hex digest of the whole key."""
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class UiSessionRow(Base):
    """A coder UI session: the signed cookie names it, and it ends at sign-out or with its key."""

    __tablename__ = "ui_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.key_id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class EncounterRow(Base):
    __tablename__ = "encounters"
    __table_args__ = (Index("ix_encounters_status_updated", "status", "updated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    """auto_accepted | in_review | final."""
    current_revision: Mapped[int] = mapped_column(Integer)
    final_revision: Mapped[int | None] = mapped_column(Integer)
    """The revision whose final codes are current (auto-accepted or finalized by a coder)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    owner: Mapped[str | None] = mapped_column(String(32), index=True)
    """The key id that first submitted the encounter: an integration key reads and resubmits only its own."""


class RevisionRow(Base):
    __tablename__ = "encounter_revisions"
    __table_args__ = (UniqueConstraint("encounter_pk", "revision", name="uq_revision_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_pk: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    encounter_json: Mapped[dict[str, Any]]
    """The encounter as received (note text included, gold excluded)."""
    result_json: Mapped[dict[str, Any]]
    """The Result with the service's routing (forced reasons added)."""
    model_version: Mapped[str] = mapped_column(String(200))
    code_set_version: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[list[Any]]
    forced_review: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class ReviewItemRow(Base):
    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_queue", "status", "priority", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_pk: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("encounter_revisions.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    """open | final | superseded."""
    priority: Mapped[float] = mapped_column(Float)
    """Lower is served first."""
    reasons: Mapped[list[Any]]
    reason_kinds: Mapped[str] = mapped_column(String(1000))
    """'|low_confidence|cold_start_model|': the reasons' kinds, for filtering with LIKE."""
    n_codes: Mapped[int] = mapped_column(Integer)
    lowest_confidence: Mapped[float | None] = mapped_column(Float)
    lease_holder: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    claims: Mapped[int] = mapped_column(Integer, default=0)
    """How many times the item was claimed (a lease generation counter)."""
    created_at: Mapped[datetime]
    finalized_at: Mapped[datetime | None]
    finalized_by: Mapped[str | None] = mapped_column(String(32))
    sequence: Mapped[list[Any] | None]
    """The coder's order of the codes ("SYSTEM|CODE" keys, diagnoses then procedures); the first kept
    diagnosis is the principal. None: the model's order."""
    superseded_by: Mapped[int | None] = mapped_column(Integer)
    """The item of the newer revision that replaced this one (status superseded)."""


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(200), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    action: Mapped[str] = mapped_column(String(10))
    system: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(20))
    replacement: Mapped[str | None] = mapped_column(String(20))
    replacement_system: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[list[Any]]
    actor: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class FinalCodeRow(Base):
    __tablename__ = "final_codes"
    __table_args__ = (Index("ix_final_codes_revision", "revision_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_pk: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("encounter_revisions.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id"))
    position: Mapped[int] = mapped_column(Integer)
    system: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]]
    source: Mapped[str] = mapped_column(String(20))
    """auto (auto-accepted), model (suggested and kept by a coder), coder (added or replacement)."""
    finalized_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(32))
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(200))
    encounter_id: Mapped[str | None] = mapped_column(String(200), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model_version: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(64))


class RateBucketRow(Base):
    """The request budget of one API key, shared by every server process on PostgreSQL (serving.limits): a
    token bucket as of `seen` (epoch seconds). An UNLOGGED table there: a crash only refills the buckets."""

    __tablename__ = "rate_buckets"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    seen: Mapped[float] = mapped_column(Float)
    allowed: Mapped[bool] = mapped_column(Boolean)
    """Whether the last request took a token (what the atomic upsert answers)."""


class SigninFailureRow(Base):
    """Failed sign-ins and rejected keys of one client address, shared by every server process on
    PostgreSQL (serving.limits); times in epoch seconds. UNLOGGED there, like `rate_buckets`."""

    __tablename__ = "signin_failures"

    client: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[float] = mapped_column(Float)
    last_failed: Mapped[float] = mapped_column(Float, index=True)


class ModelGenerationRow(Base):
    """How many admin model reloads have been asked for (serving.model_generation): every server process of a
    `medcode serve --workers N` on PostgreSQL compares it with the generation it loaded, on its model poll,
    and reloads once when it moved. One row, `name` "model"."""

    __tablename__ = "model_generation"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    requested_at: Mapped[datetime]
    requested_by: Mapped[str | None] = mapped_column(String(64))
