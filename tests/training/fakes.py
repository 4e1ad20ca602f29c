"""Small deterministic stand-ins for the learning-loop tests: encounters and feedback examples built by hand.
Coders whose ranking quality is known are `tests.fakes.FakeCoder.ranking(gold, good=...)`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from medcode.data.feedback import FeedbackCode, FeedbackExample, FeedbackNegative
from medcode.data.types import Document, Encounter, Evidence, Gold

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def encounter(encounter_id: str, text: str, diagnosis: Sequence[str] = ()) -> Encounter:
    return Encounter(
        encounter_id=encounter_id,
        documents=[Document(document_id="d1", text=text)],
        gold=Gold(diagnosis=list(diagnosis)),
    )


def example(
    encounter_id: str,
    text: str,
    final: Sequence[str],
    rejected: Sequence[str] = (),
    *,
    minutes: int = 0,
    item_id: int = 1,
    revision: int = 1,
    evidence: Mapping[str, tuple[int, int]] | None = None,
    reviewer: str = "k1",
) -> FeedbackExample:
    """A finalized review as `medcode.serving.feedback.export_feedback` returns it."""
    spans = evidence or {}
    return FeedbackExample(
        encounter_id=encounter_id,
        revision=revision,
        item_id=item_id,
        encounter=Encounter(encounter_id=encounter_id, documents=[Document(document_id="d1", text=text)]),
        final_codes=[
            FeedbackCode(
                system="ICD-10-CM",
                code=code,
                source="accepted",
                evidence=[Evidence(document_id="d1", start=spans[code][0], end=spans[code][1])]
                if code in spans
                else [],
            )
            for code in final
        ],
        rejected=[
            FeedbackNegative(system="ICD-10-CM", code=code, kind="rejected", reason="no") for code in rejected
        ],
        reviewer=reviewer,
        reviewer_name="coder",
        finalized_at=NOW + timedelta(minutes=minutes),
        model_version="m-1",
        code_set_version="ICD-10-CM 2026",
    )
