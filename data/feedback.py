"""The learning-loop contract: one finalized review as a typed training example.

The service produces these from its database (`medcode.serving.feedback.export_feedback`); training reads
them (`medcode.training.feedback.merge_feedback`). One example per encounter: its latest finalized review,
replayed decision by decision so that the latest decision on each code wins. The example carries the note,
the final codes with the evidence the coder accepted or selected, the rejected and replaced codes as
explicit negatives, who finalized and when, and the model that made the suggestions. `encounter.gold`
holds the final codes, so an example can go straight into training code that reads gold labels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from medcode.data.types import Encounter, Evidence

PositiveSource = Literal["accepted", "kept", "replacement", "added"]
"""accepted: explicitly accepted; kept: suggested and left undecided at finalize (counts as accepted);
replacement: chosen to replace a suggested code; added: added by the coder with its evidence."""


class FeedbackCode(BaseModel):
    system: str
    code: str
    description: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    source: PositiveSource
    model_confidence: float | None = None
    """The model's confidence when it suggested the code; None for codes the coder brought."""


class FeedbackNegative(BaseModel):
    system: str
    code: str
    kind: Literal["rejected", "replaced"]
    reason: str | None = None
    replaced_by: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    """The evidence the model cited for the wrong code."""
    model_confidence: float | None = None


class FeedbackExample(BaseModel):
    encounter_id: str
    revision: int
    item_id: int
    encounter: Encounter
    final_codes: list[FeedbackCode]
    rejected: list[FeedbackNegative]
    """Explicit negatives: codes the coder rejected or replaced."""
    reviewer: str
    reviewer_name: str
    finalized_at: datetime
    model_version: str
    code_set_version: str
