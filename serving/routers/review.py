"""The review queue: list, claim, read an item, decide, finalize, release."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from medcode.serving.auth import Principal
from medcode.serving.deps import (
    ItemId,
    JsonBody,
    MentionsDep,
    NowDep,
    Offset,
    Reviewer,
    SessionDep,
    SettingsDep,
)
from medcode.serving.errors import request_id_of
from medcode.serving.schemas.common import READ_ERRORS
from medcode.serving.schemas.review import (
    ClaimPublic,
    DecisionsCreate,
    DecisionsResultPublic,
    FinalizeCreate,
    FinalizePublic,
    LeasePublic,
    QueuePublic,
    ReleasePublic,
    ReviewItemPublic,
    SequenceCreate,
    SequencePublic,
)
from medcode.serving.services import review as service
from medcode.serving.services import review_flow

router = APIRouter(prefix="/v1/review", tags=["review"], responses=READ_ERRORS)
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
    offset: Offset = 0,
) -> QueuePublic:
    """Open review items, lowest priority value (least confident) first."""
    queue = service.list_queue(
        session,
        now=now,
        reason=reason,
        unclaimed_only=unclaimed,
        max_priority=max_priority,
        limit=limit,
        offset=offset,
    )
    for item in queue.items:  # a coder sees that an item is held, not by which key
        item.lease_holder = visible_holder(principal, item.lease_holder)
    return queue


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
def get_item(
    item_id: ItemId, principal: Reviewer, session: SessionDep, mentions: MentionsDep
) -> ReviewItemPublic:
    """The item with its note, result, codes as decided so far and the decisions."""
    item = service.get_item(session, item_id, mentions_of=mentions)
    item.lease_holder = visible_holder(principal, item.lease_holder)
    return item


@router.post(
    "/items/{item_id}/decisions",
    response_model=DecisionsResultPublic,
    dependencies=[JsonBody],
    responses=CONFLICT,
)
def decide(
    item_id: ItemId,
    body: DecisionsCreate,
    principal: Reviewer,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    mentions: MentionsDep,
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
        mentions_of=mentions,
    )


@router.post(
    "/items/{item_id}/finalize",
    response_model=FinalizePublic,
    responses={
        409: {
            "description": "Stale or conflicting request; `finalize_blocked` lists each problem of the "
            "code set under `problems`"
        }
    },
)
def finalize(
    item_id: ItemId,
    request: Request,
    principal: Reviewer,
    session: SessionDep,
    now: NowDep,
    mentions: MentionsDep,
    body: Annotated[FinalizeCreate | None, Body()] = None,
) -> FinalizePublic | JSONResponse:
    """Make the item's kept codes the encounter's final codes, once the live code set passes the coding
    rules: each problem is fixed by decisions or overridden with a reason (kept in the audit), and every
    undecided code is decided or accepted as a whole (`accept_undecided`)."""
    try:
        return service.finalize(session, item_id, principal, now=now, request=body, mentions_of=mentions)
    except service.FinalizeBlocked as exc:
        problems = [p.model_dump(mode="json") for p in exc.problems]
        return JSONResponse(
            {
                "detail": exc.message,
                "code": exc.code,
                "problems": problems,
                "request_id": request_id_of(request),
            },
            status_code=409,
        )


@router.post("/items/{item_id}/release", response_model=ReleasePublic, responses=CONFLICT)
def release(item_id: ItemId, principal: Reviewer, session: SessionDep, now: NowDep) -> ReleasePublic:
    """Give the lease back; the item returns to the queue with its decisions."""
    return service.release(session, item_id, principal, now=now)


@router.post("/items/{item_id}/claim", response_model=ClaimPublic, responses=CONFLICT)
def claim_item(
    item_id: ItemId, principal: Reviewer, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ClaimPublic:
    """Lease the item the coder chose in the queue (409 when another coder holds it or it is not open)."""
    return review_flow.claim_item(
        session, item_id, principal, now=now, lease_seconds=settings.review_lease_seconds
    )


@router.post("/items/{item_id}/lease", response_model=LeasePublic, responses=CONFLICT)
def renew_lease(
    item_id: ItemId, principal: Reviewer, session: SessionDep, settings: SettingsDep, now: NowDep
) -> LeasePublic:
    """Renew the caller's live lease (the coder is still working); 409 once it has expired."""
    return review_flow.renew_lease(
        session, item_id, principal, now=now, lease_seconds=settings.review_lease_seconds
    )


@router.put(
    "/items/{item_id}/sequence", response_model=SequencePublic, dependencies=[JsonBody], responses=CONFLICT
)
def set_sequence(
    item_id: ItemId,
    body: SequenceCreate,
    principal: Reviewer,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> SequencePublic:
    """Store the coder's order of the codes (principal diagnosis first); finalize keeps that order. With
    `expected_version`, 409 when the item changed since the page loaded it."""
    return review_flow.set_sequence(
        session,
        item_id,
        principal,
        body.sequence,
        now=now,
        lease_seconds=settings.review_lease_seconds,
        expected_version=body.expected_version,
    )


OTHER_HOLDER = "another-key"
"""What a coder reads as the lease holder of an item another key holds."""


def visible_holder(principal: Principal, holder: str | None) -> str | None:
    """Another key's id is an admin's to see: a coder learns only whether the lease is its own."""
    if holder is None or principal.role == "admin" or holder == principal.key_id:
        return holder
    return OTHER_HOLDER
