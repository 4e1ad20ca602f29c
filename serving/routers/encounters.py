"""Encounters: store + suggest + route, read one, list with filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from starlette.concurrency import run_in_threadpool

from medcode.data.types import Encounter
from medcode.serving.deps import (
    EncounterReader,
    EncounterWriter,
    JsonBody,
    LimitsDep,
    ModelDep,
    NowDep,
    Offset,
    PriorityDep,
    SessionDep,
    SlotsDep,
    as_utc,
)
from medcode.serving.schemas.common import AUTH_ERRORS, BODY_ERRORS, READ_ERRORS, SUGGEST_ERRORS, errors
from medcode.serving.schemas.encounters import EncounterListPublic, EncounterPublic, EncounterStatus
from medcode.serving.services import encounters as service

router = APIRouter(prefix="/v1/encounters", tags=["encounters"])


@router.post(
    "",
    response_model=EncounterPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[JsonBody],
    responses={200: {"description": "The same content was already stored: nothing new, the current state"}}
    | AUTH_ERRORS
    | BODY_ERRORS
    | errors(409)
    | SUGGEST_ERRORS,
)
async def submit_encounter(
    encounter: Encounter,
    principal: EncounterWriter,
    session: SessionDep,
    holder: ModelDep,
    limits: LimitsDep,
    slots: SlotsDep,
    now: NowDep,
    priority_fn: PriorityDep,
    response: Response,
    route: Annotated[Literal["review"] | None, Query(description="`review` forces human review")] = None,
) -> EncounterPublic:
    """Store the encounter as a new revision, suggest codes and route them (auto-accept or review).

    `?route=review` forces human review. Resubmitting an encounter with new content creates a new revision
    and supersedes an open review of the old one; an encounter a coder already finalized stays `final`
    with its codes while the new revision goes to review (reason `resubmitted_after_final`). Resending the
    latest content unchanged stores nothing and answers 200 with the current state (201 otherwise).
    An integration key reads and resubmits only the encounters it submitted: an encounter id another
    client uses answers 409."""
    service.check_encounter(encounter, limits)
    await run_in_threadpool(service.check_owner, session, principal, encounter.encounter_id)
    result = await slots.run(lambda: service.suggest(holder.coder, encounter))
    view, created = await run_in_threadpool(
        lambda: service.submit_encounter(
            session,
            principal,
            encounter,
            result,
            force_review=route == "review",
            now=now,
            priority_fn=priority_fn,
        )
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("", response_model=EncounterListPublic, responses=AUTH_ERRORS)
def list_encounters(
    principal: EncounterReader,
    session: SessionDep,
    status_: Annotated[EncounterStatus | None, Query(alias="status")] = None,
    since: Annotated[datetime | None, Query(description="updated at or after (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> EncounterListPublic:
    """Encounters, most recently updated first, filtered by status and update time (an integration key:
    only those it submitted)."""
    return service.list_encounters(
        session,
        status=status_,
        since=as_utc(since),
        limit=limit,
        offset=offset,
        owner=service.owner_scope(principal),
    )


@router.get("/{encounter_id}", response_model=EncounterPublic, responses=READ_ERRORS)
def get_encounter(encounter_id: str, principal: EncounterReader, session: SessionDep) -> EncounterPublic:
    """Status (auto_accepted, in_review, final), the latest result and the final codes (an integration
    key: 404 for an encounter another client submitted)."""
    return service.get_encounter(session, encounter_id, owner=service.owner_scope(principal))
