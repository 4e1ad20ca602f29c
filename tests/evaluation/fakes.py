"""Small stand-ins for the models and the text pipeline, so the evaluation tests need neither."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from medcode.data.types import Assertion, CodeSuggestion, Encounter, Evidence, Mention, Result, Routing


@dataclass(frozen=True)
class Rule:
    """A keyword that, when found in a note, yields a code with a fixed confidence."""

    keyword: str
    code: str
    confidence: float
    system: str = "ICD-10-CM"
    warnings: tuple[str, ...] = ()


@dataclass
class FakeCoder:
    """Suggests the codes whose keyword appears in the note; confidence >= threshold makes a suggestion,
    below it a candidate. Evidence is the keyword's span. Counts its calls."""

    rules: Sequence[Rule]
    threshold: float = 0.5
    name: str = "fake-1"
    auto_accept: bool = False
    calls: int = 0
    seen: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.name

    @property
    def code_set_version(self) -> str:
        return "ICD-10-CM 2026"

    def suggest(self, encounter: Encounter) -> Result:
        self.calls += 1
        self.seen.append(encounter.encounter_id)
        codes: list[CodeSuggestion] = []
        candidates: list[CodeSuggestion] = []
        for rule in self.rules:
            for doc in encounter.documents:
                start = doc.text.lower().find(rule.keyword.lower())
                if start < 0:
                    continue
                suggestion = CodeSuggestion(
                    system=rule.system,  # type: ignore[arg-type]
                    code=rule.code,
                    confidence=rule.confidence,
                    evidence=[
                        Evidence(
                            document_id=doc.document_id,
                            start=start,
                            end=start + len(rule.keyword),
                            text=doc.text[start : start + len(rule.keyword)],
                        )
                    ],
                    warnings=list(rule.warnings),
                )
                (codes if rule.confidence >= self.threshold else candidates).append(suggestion)
                break
        decision = "auto_accept" if self.auto_accept and codes else "review"
        return Result(
            encounter_id=encounter.encounter_id,
            model_version=self.name,
            code_set_version=self.code_set_version,
            codes=codes,
            candidates=candidates,
            routing=Routing(
                decision=decision, reasons=[] if decision == "auto_accept" else ["low_confidence:x"]
            ),
            calibrated=True,
        )


NEGATIONS = ("no ", "denies ")
FAMILY = ("mother had ", "father had ")


def fake_extract(text: str, document_id: str = "d1") -> list[Mention]:
    """One mention per word of 4+ letters; negated after "no"/"denies", family after "mother had"."""
    mentions = []
    pos = 0
    for word in text.split():
        start = text.index(word, pos)
        pos = start + len(word)
        clean = word.strip(".,;:")
        if len(clean) < 4:
            continue
        before = text[max(0, start - 12) : start].lower()
        assertion = Assertion(
            negated=any(before.endswith(n) for n in NEGATIONS),
            family=any(before.endswith(f) for f in FAMILY),
        )
        mentions.append(
            Mention(
                document_id=document_id, start=start, end=start + len(clean), text=clean, assertion=assertion
            )
        )
    return mentions
