"""The append-only audit log: who did what, when, to which entity, with the state before and after.

Events are added inside the caller's transaction, so an event exists exactly when its change does.
Note text never goes into an event: before/after hold codes, statuses and ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from medcode.serving.auth import Principal
from medcode.serving.context import request_id_var
from medcode.serving.db import page
from medcode.serving.orm import AuditEventRow, utcnow


class AuditEventPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_name: str
    actor_role: str
    action: str
    entity_type: str
    entity_id: str
    encounter_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    model_version: str | None
    request_id: str | None


class AuditPagePublic(BaseModel):
    events: list[AuditEventPublic]
    total: int
    limit: int
    offset: int


def record(
    session: Session,
    actor: Principal,
    action: str,
    entity_type: str,
    entity_id: str | int,
    *,
    encounter_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    model_version: str | None = None,
    at: datetime | None = None,
) -> None:
    session.add(
        AuditEventRow(
            at=at or utcnow(),
            actor=actor.key_id,
            actor_name=actor.name,
            actor_role=actor.role,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            encounter_id=encounter_id,
            before=before,
            after=after,
            model_version=model_version,
            request_id=request_id_var.get(),
        )
    )


def list_events(
    session: Session,
    *,
    encounter_id: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> AuditPagePublic:
    query = select(AuditEventRow)
    if encounter_id is not None:
        query = query.where(AuditEventRow.encounter_id == encounter_id)
    if action is not None:
        query = query.where(AuditEventRow.action == action)
    if actor is not None:
        query = query.where(AuditEventRow.actor == actor)
    if since is not None:
        query = query.where(AuditEventRow.at >= since)
    total, rows = page(session, query, AuditEventRow.id, limit=limit, offset=offset)
    events = [AuditEventPublic.model_validate(row, from_attributes=True) for (row,) in rows]
    return AuditPagePublic(events=events, total=total, limit=limit, offset=offset)
