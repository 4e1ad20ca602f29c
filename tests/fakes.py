"""The one fake coder of the tests: a deterministic `medcode.model.base.Coder` without a model.

It finds its codes one of two ways:

- keyword rules (the default, `SERVICE_RULES`): a rule's code is found where its keyword appears in a
  note, with the rule's confidence and the keyword's span as evidence; a keyword after "no", "denies",
  "without" or "negative for" in its sentence is negated and only ever a low-confidence candidate;
- a ranking per encounter (`FakeCoder.ranking(gold)`): the gold codes first (a good model) or last (a bad
  one), padded with shuffled wrong codes, confidences 0.95, 0.90, ... (ranking-quality tests).

Found codes with a confidence >= `threshold` are suggested (at most `max_codes`), the rest are candidates.
Routing: auto-accept when every suggestion reaches `auto_accept` (None: never), otherwise review with a
`low_confidence:CODE` reason per code below it, or `no_codes`. Every call is recorded in `calls`; a note
containing "CRASH" raises (a model failure).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medcode.data.types import CodeSuggestion, Encounter, Evidence, Gold, Result, Routing


@dataclass(frozen=True)
class Rule:
    """A keyword that, when found in a note, yields a code with a fixed confidence."""

    keyword: str
    code: str
    confidence: float
    system: str = "ICD-10-CM"
    description: str = ""
    warnings: tuple[str, ...] = ()


SERVICE_RULES: tuple[Rule, ...] = (
    Rule("hypertension", "I10", 0.97, description="Essential (primary) hypertension"),
    Rule("diabetes", "E11.9", 0.62, description="Type 2 diabetes mellitus without complications"),
    Rule("chest pain", "R07.9", 0.93, description="Chest pain, unspecified"),
    Rule("asthma", "J45.909", 0.41, description="Unspecified asthma, uncomplicated"),
    Rule(
        "appendectomy",
        "0DTJ4ZZ",
        0.95,
        system="ICD-10-PCS",
        description="Resection of Appendix, Percutaneous Endoscopic Approach",
    ),
)
WRONG_CODES = ("I10", "E11.9", "E11.65", "J45.909", "N18.32", "R50.9", "J18.9", "D50.9", "N39.0", "F32.9")
"""Codes a ranking is padded with."""
NEGATION = re.compile(r"\b(no|denies|without|negative for)\b[^.]*$", re.IGNORECASE)


@dataclass
class FakeConfig:
    threshold: float
    auto_accept: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FakeCoder:
    """See the module docstring."""

    rules: Sequence[Rule] = SERVICE_RULES
    threshold: float = 0.0
    auto_accept: float | None = 0.9
    version: str = "fake-1"
    code_set_version: str = "ICD-10-CM 2026"
    max_codes: int | None = None
    ranked: Callable[[str], Sequence[str]] | None = None
    """encounter id -> its codes, best first (replaces the rules)."""
    calibrated: bool = True
    calls: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    pipeline: Any = None
    """The model's own text pipeline (`Coder.pipeline`); None: it reads notes with the installed one."""

    @classmethod
    def ranking(
        cls,
        gold: Mapping[str, Gold],
        *,
        good: bool = True,
        pool: Sequence[str] = WRONG_CODES,
        seed: int = 0,
        version: str = "ranking-1",
    ) -> FakeCoder:
        """Ranks each encounter's diagnosis codes from `gold`: first when `good`, otherwise after a shuffled
        list of wrong codes from `pool`; suggests the top two, always for review."""

        def ranked(encounter_id: str) -> list[str]:
            codes = list((gold.get(encounter_id) or Gold()).diagnosis)
            wrong = [c for c in pool if c not in codes]
            random.Random(f"{seed}:{encounter_id}").shuffle(wrong)
            return codes + wrong if good else wrong + codes

        return cls(rules=(), ranked=ranked, max_codes=2, auto_accept=None, version=version)

    @property
    def config(self) -> FakeConfig:
        return FakeConfig(self.threshold, self.auto_accept)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        rules = [asdict(r) for r in self.rules]
        (path / "fake.json").write_text(json.dumps({"version": self.version, "rules": rules}))
        return path

    def suggest(self, encounter: Encounter) -> Result:
        self.calls.append(encounter.encounter_id)
        found = self._ranked(encounter) if self.ranked is not None else self._by_rules(encounter)
        codes: list[CodeSuggestion] = []
        candidates: list[CodeSuggestion] = []
        for suggestion, negated in found:
            room = self.max_codes is None or len(codes) < self.max_codes
            if not negated and suggestion.confidence >= self.threshold and room:
                codes.append(suggestion)
            else:
                candidates.append(suggestion)
        reasons = [
            f"low_confidence:{c.code}"
            for c in codes
            if self.auto_accept is None or c.confidence < self.auto_accept
        ]
        if not codes:
            reasons.append("no_codes")
        return Result(
            encounter_id=encounter.encounter_id,
            model_version=self.version,
            code_set_version=self.code_set_version,
            codes=codes,
            candidates=candidates,
            routing=Routing(decision="review" if reasons else "auto_accept", reasons=reasons),
            calibrated=self.calibrated,
        )

    def _ranked(self, encounter: Encounter) -> list[tuple[CodeSuggestion, bool]]:
        assert self.ranked is not None
        evidence = [Evidence(document_id=encounter.documents[0].document_id, start=0, end=1)]
        return [
            (CodeSuggestion(code=code, confidence=round(0.95 - 0.05 * i, 3), evidence=evidence), False)
            for i, code in enumerate(self.ranked(encounter.encounter_id))
        ]

    def _by_rules(self, encounter: Encounter) -> list[tuple[CodeSuggestion, bool]]:
        found: list[tuple[CodeSuggestion, bool]] = []
        for doc in encounter.documents:
            if "CRASH" in doc.text:
                raise RuntimeError(f"model failure on: {doc.text}")
            lowered = doc.text.lower()
            for rule in self.rules:
                start = lowered.find(rule.keyword.lower())
                if start < 0 or any(s.code == rule.code and not neg for s, neg in found):
                    continue
                end = start + len(rule.keyword)
                negated = NEGATION.search(doc.text[max(0, start - 40) : start]) is not None
                suggestion = CodeSuggestion(
                    system=rule.system,  # type: ignore[arg-type]
                    code=rule.code,
                    description=rule.description,
                    confidence=0.05 if negated else rule.confidence,
                    evidence=[
                        Evidence(document_id=doc.document_id, start=start, end=end, text=doc.text[start:end])
                    ],
                    rationale=f"keyword {rule.keyword!r}" + (" (negated)" if negated else ""),
                    warnings=list(rule.warnings),
                )
                found.append((suggestion, negated))
        return found
