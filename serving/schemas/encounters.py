"""Encounter schemas: the encounter comes in as `medcode.data.types.Encounter`, the stored state goes out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from medcode.data.types import Evidence, Result

EncounterStatus = Literal["auto_accepted", "in_review", "final"]
FinalCodeSource = Literal["auto", "model", "coder"]


class FinalCodePublic(BaseModel):
    system: str
    code: str
    description: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    source: FinalCodeSource
    """auto: auto-accepted; model: suggested and kept by a coder; coder: added or a replacement."""


class EncounterPublic(BaseModel):
    encounter_id: str
    status: EncounterStatus
    revision: int
    """The latest revision (1 for a first submission)."""
    result: Result
    """The result of the latest revision, with the service's routing."""
    final_codes: list[FinalCodePublic] = Field(default_factory=list)
    final_revision: int | None = None
    """The revision `final_codes` belong to (older than `revision` while a resubmission is in review)."""
    review_pending: bool = False
    review_item_id: int | None = None
    created_at: datetime
    updated_at: datetime


class EncounterSummaryPublic(BaseModel):
    encounter_id: str
    status: EncounterStatus
    revision: int
    final_revision: int | None
    review_pending: bool
    routing_decision: str
    reasons: list[str]
    model_version: str
    code_set_version: str
    created_at: datetime
    updated_at: datetime


class EncounterListPublic(BaseModel):
    items: list[EncounterSummaryPublic]
    total: int
    limit: int
    offset: int
