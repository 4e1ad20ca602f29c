"""The review queue: list, claim, read an item, decide, finalize, release."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from medcode.serving.deps import JsonBody, NowDep, Reviewer, SessionDep, SettingsDep
from medcode.serving.schemas.review import (
    ClaimPublic,
    DecisionsCreate,
    DecisionsResultPublic,
    FinalizePublic,
    QueuePublic,
    ReleasePublic,
    ReviewItemPublic,
)
from medcode.serving.services import review as service

router = APIRouter(prefix="/v1/review", tags=["review"])
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Stale or conflicting request (lease, item state, codes)"}
}


@router.get("/queue", response_model=QueuePublic)
def queue(
    principal: Reviewer,
    session: SessionDep,
    now: NowDep,
    reason: Annotated[
        str | None, Query(description="only items with this reason kind, e.g. low_confidence")
    ] = None,
    unclaimed: Annotated[bool, Query(description="only items nobody holds")] = False,
    max_priority: float | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> QueuePublic:
    """Open review items, lowest priority value (least confident) first."""
    return service.list_queue(
        session,
        now=now,
        reason=reason,
        unclaimed_only=unclaimed,
        max_priority=max_priority,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/claim",
    response_model=ClaimPublic,
    responses={204: {"description": "The queue is empty"}},
)
def claim(
    principal: Reviewer, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ClaimPublic | Response:
    """Lease the next item to the caller (204 when none is free); a held item is returned again."""
    claimed = service.claim_next(session, principal, now=now, lease_seconds=settings.review_lease_seconds)
    if claimed is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return claimed


@router.get("/items/{item_id}", response_model=ReviewItemPublic)
def get_item(item_id: int, principal: Reviewer, session: SessionDep) -> ReviewItemPublic:
    """The item with its note, result, codes as decided so far and the decisions."""
    return service.get_item(session, item_id)


@router.post(
    "/items/{item_id}/decisions",
    response_model=DecisionsResultPublic,
    dependencies=[JsonBody],
    responses=CONFLICT,
)
def decide(
    item_id: int,
    body: DecisionsCreate,
    principal: Reviewer,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> DecisionsResultPublic:
    """Store per-code decisions (accept, reject with reason, replace, add with evidence); renews the lease.

    A `decision_id` per decision, or an `Idempotency-Key` header, makes a retry store nothing new."""
    return service.record_decisions(
        session,
        item_id,
        principal,
        body.decisions,
        now=now,
        lease_seconds=settings.review_lease_seconds,
        idempotency_key=idempotency_key,
    )


@router.post("/items/{item_id}/finalize", response_model=FinalizePublic, responses=CONFLICT)
def finalize(item_id: int, principal: Reviewer, session: SessionDep, now: NowDep) -> FinalizePublic:
    """Make the item's kept codes the encounter's final codes (undecided suggestions count as accepted)."""
    return service.finalize(session, item_id, principal, now=now)


@router.post("/items/{item_id}/release", response_model=ReleasePublic, responses=CONFLICT)
def release(item_id: int, principal: Reviewer, session: SessionDep, now: NowDep) -> ReleasePublic:
    """Give the lease back; the item returns to the queue with its decisions."""
    return service.release(session, item_id, principal, now=now)
