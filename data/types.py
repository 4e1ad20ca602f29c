"""Domain types shared by every package: encounters in, results out (DESIGN.md contracts).

These are pydantic models so that the same classes validate API input, CLI input and JSONL lines.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

Sex = Literal["female", "male", "other", "unknown"]
Setting = Literal["inpatient", "outpatient", "emergency", "observation", "other"]
System = Literal["ICD-10-CM", "ICD-10-PCS", "HCPCS", "CPT"]
Task = Literal["diagnosis", "procedure"]
Decision = Literal["auto_accept", "review"]

DIAGNOSIS_SYSTEMS: frozenset[str] = frozenset({"ICD-10-CM"})
PROCEDURE_SYSTEMS: frozenset[str] = frozenset({"ICD-10-PCS", "HCPCS", "CPT"})


def task_of_system(system: str) -> Task:
    return "diagnosis" if system in DIAGNOSIS_SYSTEMS else "procedure"


class Patient(BaseModel):
    age: int | None = Field(None, ge=0, le=130)
    sex: Sex | None = None


class Document(BaseModel):
    document_id: str = Field(min_length=1, max_length=200)
    type: str = "note"
    text: str


class Gold(BaseModel):
    diagnosis: list[str] = Field(default_factory=list)
    procedure: list[str] = Field(default_factory=list)

    def codes(self, task: Task) -> list[str]:
        return self.diagnosis if task == "diagnosis" else self.procedure


class Encounter(BaseModel):
    """One encounter: its notes and the patient context the coding rules need."""

    model_config = ConfigDict(extra="ignore")

    encounter_id: str = Field(min_length=1, max_length=200)
    patient: Patient = Field(default_factory=Patient)
    setting: Setting = "inpatient"
    date: str | None = None
    documents: list[Document] = Field(min_length=1)
    gold: Gold | None = None

    @model_validator(mode="after")
    def _unique_document_ids(self) -> Encounter:
        ids = [d.document_id for d in self.documents]
        if len(ids) != len(set(ids)):
            raise ValueError("document_id values must be unique within an encounter")
        return self

    def document(self, document_id: str) -> Document:
        for doc in self.documents:
            if doc.document_id == document_id:
                return doc
        raise KeyError(document_id)


class Assertion(BaseModel):
    negated: bool = False
    possible: bool = False
    historical: bool = False
    family: bool = False
    hypothetical: bool = False

    @property
    def is_present(self) -> bool:
        """True when the mention may support a code: not negated, family or hypothetical."""
        return not (self.negated or self.family or self.hypothetical)


MentionType = Literal["condition", "sign_symptom", "procedure", "injury", "anatomy", "other"]


class Mention(BaseModel):
    """A clinical mention found by the text pipeline; offsets index the original document text."""

    document_id: str = "d1"
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str
    type: MentionType = "condition"
    section: str = "unknown"
    assertion: Assertion = Field(default_factory=Assertion)
    attributes: dict[str, str] = Field(default_factory=dict)
    """Modifiers found around the mention: laterality, acuity, severity, stage, episode, anatomy."""
    concepts: list[str] = Field(default_factory=list)
    """Codes the lexicon entry that matched this mention points at (may be empty)."""


class Evidence(BaseModel):
    document_id: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str = ""

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: int, info):  # type: ignore[no-untyped-def]
        start = info.data.get("start", 0)
        if end < start:
            raise ValueError("evidence end must not be before start")
        return end


class CodeSuggestion(BaseModel):
    system: System = "ICD-10-CM"
    code: str
    description: str = ""
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[Evidence] = Field(default_factory=list)
    rationale: str = ""
    warnings: list[str] = Field(default_factory=list)
    """Coding rules that fired on this code (e.g. 'excludes1:E11.9')."""
    _rank: int | None = PrivateAttr(default=None)

    @property
    def task(self) -> Task:
        return task_of_system(self.system)

    @property
    def rank(self) -> int | None:
        """Position of the code in the ranker's list of its task (0 = first), when the ranker set it:
        `Result.ranked` keeps that order, so the coding rules moving a code between codes and candidates
        do not reorder the ranking. None for codes the rules added. Not part of the JSON."""
        private = self.__pydantic_private__  # None on objects pickled before the attribute existed
        return private.get("_rank") if private else None

    def set_rank(self, rank: int | None) -> CodeSuggestion:
        if self.__pydantic_private__ is None:
            self.__pydantic_private__ = {}
        self._rank = rank
        return self


class Routing(BaseModel):
    decision: Decision = "review"
    reasons: list[str] = Field(default_factory=list)


class Result(BaseModel):
    """What the API and `medcode suggest` return for one encounter."""

    encounter_id: str
    model_version: str
    code_set_version: str
    codes: list[CodeSuggestion] = Field(default_factory=list)
    """The suggested codes: those that passed the model's thresholds and the coding rules."""
    candidates: list[CodeSuggestion] = Field(default_factory=list)
    """Ranked alternatives below the decision threshold (for coders and for ranking metrics)."""
    routing: Routing = Field(default_factory=Routing)
    calibrated: bool = True

    def ranked(self, task: Task) -> list[CodeSuggestion]:
        """Suggested codes then candidates of one task, highest confidence first.

        Where a ranker recorded its order (`CodeSuggestion.rank`), its codes come in that order whatever
        the coding rules moved between codes and candidates, and codes without a rank (added by the
        rules) follow them, highest confidence first: the rules never push a ranked code down."""
        items = [c for c in [*self.codes, *self.candidates] if c.task == task]
        return sorted(items, key=_ranking_key)


def _ranking_key(suggestion: CodeSuggestion) -> tuple[bool, float, int]:
    rank = suggestion.rank
    return (rank is None, -suggestion.confidence, 0 if rank is None else rank)
