"""Encounters: store + suggest + route, read one, list with filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from medcode.data.types import Encounter
from medcode.serving.deps import (
    EncounterReader,
    EncounterWriter,
    JsonBody,
    ModelDep,
    NowDep,
    PriorityDep,
    SessionDep,
    SettingsDep,
)
from medcode.serving.schemas.encounters import EncounterListPublic, EncounterPublic, EncounterStatus
from medcode.serving.services import encounters as service

router = APIRouter(prefix="/v1/encounters", tags=["encounters"])


@router.post(
    "",
    response_model=EncounterPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[JsonBody],
    responses={200: {"description": "The same content was already stored: nothing new, the current state"}},
)
def submit_encounter(
    encounter: Encounter,
    principal: EncounterWriter,
    session: SessionDep,
    holder: ModelDep,
    settings: SettingsDep,
    now: NowDep,
    priority_fn: PriorityDep,
    response: Response,
    route: Annotated[Literal["review"] | None, Query(description="`review` forces human review")] = None,
) -> EncounterPublic:
    """Store the encounter as a new revision, suggest codes and route them (auto-accept or review).

    `?route=review` forces human review. Resubmitting an encounter with new content creates a new revision
    and supersedes an open review of the old one; an encounter a coder already finalized stays `final`
    with its codes while the new revision goes to review (reason `resubmitted_after_final`). Resending the
    latest content unchanged stores nothing and answers 200 with the current state (201 otherwise)."""
    service.check_note_size(encounter, settings.max_note_chars)
    result = service.suggest(holder.coder, encounter)
    view, created = service.submit_encounter(
        session,
        principal,
        encounter,
        result,
        force_review=route == "review",
        now=now,
        priority_fn=priority_fn,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("", response_model=EncounterListPublic)
def list_encounters(
    principal: EncounterReader,
    session: SessionDep,
    status_: Annotated[EncounterStatus | None, Query(alias="status")] = None,
    since: Annotated[datetime | None, Query(description="updated at or after (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EncounterListPublic:
    """Encounters, most recently updated first, filtered by status and update time."""
    return service.list_encounters(session, status=status_, since=_aware(since), limit=limit, offset=offset)


@router.get("/{encounter_id}", response_model=EncounterPublic)
def get_encounter(encounter_id: str, principal: EncounterReader, session: SessionDep) -> EncounterPublic:
    """Status (auto_accepted, in_review, final), the latest result and the final codes."""
    return service.get_encounter(session, encounter_id)


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
