"""Review queue schemas: queue items, claims, per-code decisions, finalization."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from medcode.data.types import Document, Evidence, Patient, Result, System
from medcode.serving.schemas.encounters import FinalCodePublic

Action = Literal["accept", "reject", "replace", "add"]
CodeStatus = Literal["pending", "accepted", "rejected", "replaced", "added"]


class QueueItemPublic(BaseModel):
    item_id: int
    encounter_id: str
    revision: int
    priority: float
    reasons: list[str]
    n_codes: int
    lowest_confidence: float | None
    created_at: datetime
    claimed: bool
    lease_holder: str | None = None
    lease_expires_at: datetime | None = None


class QueuePublic(BaseModel):
    items: list[QueueItemPublic]
    total: int


class ClaimPublic(BaseModel):
    item_id: int
    encounter_id: str
    revision: int
    lease_expires_at: datetime
    resumed: bool = False
    """True when the caller already held this item and the claim renewed its lease."""


class EvidenceCreate(BaseModel):
    document_id: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str | None = None
    """Optional; when given it must equal the document text at [start, end)."""


class DecisionCreate(BaseModel):
    action: Action
    code: str = Field(min_length=1, max_length=20)
    system: System | None = None
    """Optional: a code is matched in the item (or looked up for `add`) in every system when absent."""
    replacement: str | None = Field(None, max_length=20)
    replacement_system: System | None = None
    reason: str | None = Field(None, max_length=2000)
    evidence: list[EvidenceCreate] = Field(default_factory=list, max_length=50)
    decision_id: str | None = Field(None, min_length=1, max_length=120)
    """Optional client id: resending a decision with the same id stores nothing new."""

    @model_validator(mode="after")
    def _fields_of_action(self) -> DecisionCreate:
        if self.action == "replace" and not self.replacement:
            raise ValueError("a replace decision needs a replacement code")
        if self.action != "replace" and self.replacement:
            raise ValueError("only a replace decision takes a replacement code")
        if self.action == "reject" and not (self.reason and self.reason.strip()):
            raise ValueError("a reject decision needs a reason")
        if self.action == "add" and not self.evidence:
            raise ValueError("an add decision needs at least one evidence span")
        if self.action not in ("add",) and self.evidence:
            raise ValueError("only an add decision takes evidence")
        return self


class DecisionsCreate(BaseModel):
    decisions: list[DecisionCreate] = Field(min_length=1, max_length=200)


class DecisionPublic(BaseModel):
    decision_id: str
    item_id: int
    action: Action
    system: str
    code: str
    replacement: str | None = None
    replacement_system: str | None = None
    reason: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    actor: str
    created_at: datetime


class ItemCodePublic(BaseModel):
    """One code of a review item as the decisions so far leave it."""

    system: str
    code: str
    description: str = ""
    confidence: float | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    rationale: str = ""
    warnings: list[str] = Field(default_factory=list)
    origin: Literal["model", "added", "replacement"]
    status: CodeStatus
    reason: str | None = None
    replaced_by: str | None = None


class DecisionsResultPublic(BaseModel):
    item_id: int
    stored: list[DecisionPublic]
    """Decisions stored by this request."""
    replayed: list[DecisionPublic] = Field(default_factory=list)
    """Decisions that were already stored under the same decision_id (nothing new stored)."""
    codes: list[ItemCodePublic]
    lease_expires_at: datetime | None


class ReviewItemPublic(BaseModel):
    item_id: int
    encounter_id: str
    revision: int
    status: Literal["open", "final", "superseded"]
    priority: float
    reasons: list[str]
    lease_holder: str | None
    lease_expires_at: datetime | None
    patient: Patient
    setting: str
    date: str | None = None
    documents: list[Document]
    result: Result
    codes: list[ItemCodePublic]
    decisions: list[DecisionPublic]
    created_at: datetime
    finalized_at: datetime | None = None
    finalized_by: str | None = None


class FinalizePublic(BaseModel):
    item_id: int
    encounter_id: str
    revision: int
    status: Literal["final"]
    final_codes: list[FinalCodePublic]
    finalized_at: datetime


class ReleasePublic(BaseModel):
    item_id: int
    encounter_id: str
    released: bool
