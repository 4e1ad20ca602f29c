"""GET /v1/audit: the audit log (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from medcode.serving.deps import Auditor, Offset, SessionDep, as_utc
from medcode.serving.schemas.common import AUTH_ERRORS
from medcode.serving.services import audit as service

router = APIRouter(prefix="/v1", tags=["audit"], responses=AUTH_ERRORS)


@router.get("/audit", response_model=service.AuditPagePublic)
def audit_events(
    principal: Auditor,
    session: SessionDep,
    encounter_id: str | None = None,
    action: str | None = None,
    actor: Annotated[str | None, Query(description="key id of the actor")] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> service.AuditPagePublic:
    return service.list_events(
        session,
        encounter_id=encounter_id,
        action=action,
        actor=actor,
        since=as_utc(since),
        limit=limit,
        offset=offset,
    )
