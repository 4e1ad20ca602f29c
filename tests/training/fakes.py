"""Small deterministic stand-ins for the learning-loop tests: feedback examples built by hand, and coders
whose ranking quality is known (an oracle that ranks the gold codes first, a shuffled one that does not)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from medcode.data.types import CodeSuggestion, Document, Encounter, Evidence, Gold, Result, Routing
from medcode.data.feedback import FeedbackCode, FeedbackExample, FeedbackNegative

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CODES = ["I10", "E11.9", "E11.65", "J45.909", "N18.32", "R50.9", "J18.9", "D50.9", "N39.0", "F32.9"]


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


@dataclass
class RankingCoder:
    """Ranks each encounter's codes from a table: `good` puts the gold codes first, otherwise they come
    after a shuffled list of wrong codes."""

    gold: Mapping[str, Gold]
    good: bool = True
    version: str = "ranking-1"
    code_set_version: str = "ICD-10-CM 2026"
    seed: int = 0
    pool: Sequence[str] = tuple(CODES)
    """Wrong codes the ranking is padded with."""
    calls: list[str] = field(default_factory=list)

    def suggest(self, encounter: Encounter) -> Result:
        self.calls.append(encounter.encounter_id)
        gold = list((self.gold.get(encounter.encounter_id) or Gold()).diagnosis)
        rng = random.Random(f"{self.seed}:{encounter.encounter_id}")
        wrong = [c for c in self.pool if c not in gold]
        rng.shuffle(wrong)
        ranked = gold + wrong if self.good else wrong + gold
        evidence = [Evidence(document_id="d1", start=0, end=1)]
        items = [
            CodeSuggestion(code=c, confidence=round(0.95 - 0.05 * i, 3), evidence=evidence)
            for i, c in enumerate(ranked)
        ]
        return Result(
            encounter_id=encounter.encounter_id,
            model_version=self.version,
            code_set_version=self.code_set_version,
            codes=items[:2],
            candidates=items[2:],
            routing=Routing(decision="review", reasons=["low_confidence"]),
        )
