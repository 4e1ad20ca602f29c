"""A small deterministic Coder for the service tests (keyword rules, negation-aware like the real one)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medcode.data.types import CodeSuggestion, Encounter, Evidence, Result, Routing

# keyword -> (system, code, description, confidence)
KEYWORDS: dict[str, tuple[str, str, str, float]] = {
    "hypertension": ("ICD-10-CM", "I10", "Essential (primary) hypertension", 0.97),
    "diabetes": ("ICD-10-CM", "E11.9", "Type 2 diabetes mellitus without complications", 0.62),
    "chest pain": ("ICD-10-CM", "R07.9", "Chest pain, unspecified", 0.93),
    "asthma": ("ICD-10-CM", "J45.909", "Unspecified asthma, uncomplicated", 0.41),
    "appendectomy": (
        "ICD-10-PCS",
        "0DTJ4ZZ",
        "Resection of Appendix, Percutaneous Endoscopic Approach",
        0.95,
    ),
}
NEGATION = re.compile(r"\b(no|denies|without|negative for)\b[^.]*$", re.IGNORECASE)
AUTO_ACCEPT = 0.9


@dataclass
class FakeCoder:
    version: str = "fake-1"
    code_set_version: str = "ICD-10-CM 2026"
    calls: list[str] = field(default_factory=list)

    def suggest(self, encounter: Encounter) -> Result:
        self.calls.append(encounter.encounter_id)
        codes: list[CodeSuggestion] = []
        candidates: list[CodeSuggestion] = []
        for doc in encounter.documents:
            if "CRASH" in doc.text:
                raise RuntimeError(f"model failure on: {doc.text}")
            lowered = doc.text.lower()
            for keyword, (system, code, description, confidence) in KEYWORDS.items():
                start = lowered.find(keyword)
                if start < 0 or any(c.code == code for c in codes):
                    continue
                end = start + len(keyword)
                evidence = [
                    Evidence(document_id=doc.document_id, start=start, end=end, text=doc.text[start:end])
                ]
                negated = NEGATION.search(doc.text[max(0, start - 40) : start]) is not None
                suggestion = CodeSuggestion(
                    system=system,  # type: ignore[arg-type]
                    code=code,
                    description=description,
                    confidence=0.05 if negated else confidence,
                    evidence=evidence,
                    rationale=f"keyword {keyword!r}" + (" (negated)" if negated else ""),
                )
                (candidates if negated else codes).append(suggestion)
        reasons = [f"low_confidence:{c.code}" for c in codes if c.confidence < AUTO_ACCEPT]
        if not codes:
            reasons.append("no_codes")
        return Result(
            encounter_id=encounter.encounter_id,
            model_version=self.version,
            code_set_version=self.code_set_version,
            codes=codes,
            candidates=candidates,
            routing=Routing(decision="review" if reasons else "auto_accept", reasons=reasons),
        )


class FakeClock:
    """A settable clock the app reads through `create_app(clock=...)`."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(seconds=seconds)


def encounter_json(encounter_id: str, text: str, **extra: object) -> dict[str, object]:
    return {
        "encounter_id": encounter_id,
        "patient": {"age": 67, "sex": "female"},
        "setting": "inpatient",
        "documents": [{"document_id": "d1", "type": "discharge_summary", "text": text}],
        **extra,
    }
