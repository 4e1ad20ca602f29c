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
    expected_rev: int | None = Field(None, ge=0)
    """Optional: the code's `rev` the client saw; another value now (someone decided the code
    meanwhile, e.g. in another tab) answers 409 `stale_code`. Not used by `add`."""

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


class ProblemPublic(BaseModel):
    """One problem of the live code set (see `serving.services.review_checks`)."""

    key: str
    """What an override names, e.g. "excludes1:N39.41|R32"."""
    kind: str
    codes: list[str]
    message: str
    overridable: bool
    """False: only changing the codes fixes it (incomplete, non-billable, undecided)."""


class OverriddenProblemPublic(ProblemPublic):
    reason: str
    """The coder's reason, kept in the audit."""


class ScoredCodePublic(BaseModel):
    """A code the model proposed, with its score and evidence: the common part of item codes and candidates."""

    system: str
    code: str
    description: str = ""
    confidence: float | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    billable: bool | None = None
    """Whether the code can stand on a claim as it is: False for a header or an incomplete code (a candidate
    can then only be completed, not added); None when the code set cannot tell."""


class ItemCodePublic(ScoredCodePublic):
    """One code of a review item as the decisions so far leave it."""

    rationale: str = ""
    warnings: list[str] = Field(default_factory=list)
    origin: Literal["model", "added", "replacement"]
    status: CodeStatus
    reason: str | None = None
    replaced_by: str | None = None
    problems: list[ProblemPublic] = Field(default_factory=list)
    """Live problems of this code within the kept code set (recomputed after every decision)."""
    rev: int = 0
    """Decisions that touched this code so far; send it back as `expected_rev`."""


class CandidatePublic(ScoredCodePublic):
    """A code the model scored below its threshold, offered for adding."""


class DecisionsResultPublic(BaseModel):
    item_id: int
    stored: list[DecisionPublic]
    """Decisions stored by this request."""
    replayed: list[DecisionPublic] = Field(default_factory=list)
    """Decisions that were already stored under the same decision_id (nothing new stored)."""
    codes: list[ItemCodePublic]
    lease_expires_at: datetime | None
    version: int = 0
    """Decisions stored on the item; send it back as finalize's `expected_version`."""
    problems: list[ProblemPublic] = Field(default_factory=list)
    """What finalize would refuse now."""


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
    version: int = 0
    """Decisions stored on the item; send it back as finalize's `expected_version`."""
    problems: list[ProblemPublic] = Field(default_factory=list)
    """What finalize would refuse now (empty once final)."""
    candidates: list[CandidatePublic] = Field(default_factory=list)
    sequence: list[str] | None = None
    """The coder's order of the codes ("SYSTEM|CODE"; diagnoses, principal first, then procedures);
    None: the model's order."""
    superseded_by: int | None = None
    """For a superseded item: the item of the newer revision, which carries the decisions that still apply."""


class SequenceCreate(BaseModel):
    """The coder's order of the item's codes: "SYSTEM|CODE" keys, the principal diagnosis first."""

    sequence: list[str] = Field(min_length=1, max_length=500)
    expected_version: int | None = Field(None, ge=0)
    """The item's `version` as the page saw it: 409 when the item has changed since (another tab or coder)."""


class SequencePublic(BaseModel):
    item_id: int
    sequence: list[str]
    principal: str | None
    """The principal diagnosis: the first kept ICD-10-CM code in the sequence."""
    lease_expires_at: datetime


class LeasePublic(BaseModel):
    item_id: int
    lease_expires_at: datetime
    lease_seconds: float


class OverrideCreate(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)
    problem: str | None = Field(None, max_length=300)
    """The problem's `key`; absent: every overridable problem."""

    @model_validator(mode="after")
    def _real_reason(self) -> OverrideCreate:
        if len(self.reason.strip()) < 3:
            raise ValueError("an override needs a reason")
        return self


class FinalizeCreate(BaseModel):
    """Optional finalize body: explicit acceptance of undecided codes, overrides with reasons."""

    accept_undecided: bool = False
    """Keep every code still without a decision as suggested (recorded in the audit as such)."""
    override: OverrideCreate | None = None
    """One reason for every overridable problem."""
    overrides: list[OverrideCreate] = Field(default_factory=list, max_length=200)
    """A reason per problem (each names its `problem` key)."""
    expected_version: int | None = Field(None, ge=0)
    """The item `version` the client saw; another value now answers 409 `stale_item`."""

    @model_validator(mode="after")
    def _named(self) -> FinalizeCreate:
        if any(o.problem is None for o in self.overrides):
            raise ValueError("each entry of overrides names its problem (the problem's key)")
        return self


class FinalizePublic(BaseModel):
    item_id: int
    encounter_id: str
    revision: int
    status: Literal["final"]
    final_codes: list[FinalCodePublic]
    finalized_at: datetime
    overridden: list[OverriddenProblemPublic] = Field(default_factory=list)
    """Problems finalized over, each with the reason the audit keeps."""
    accepted_undecided: list[str] = Field(default_factory=list)


class ReleasePublic(BaseModel):
    item_id: int
    encounter_id: str
    released: bool
