"""The behavioural suite: short notes with codes a model must produce, must not suggest, and must never
even rank (negated, family, hypothetical mentions). Cases live in behaviour_cases.jsonl."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcode.data.types import Document, Encounter, Result

CASES_FILE = Path(__file__).with_name("behaviour_cases.jsonl")


def load_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CASES_FILE.read_text().splitlines() if line.strip()]


def matches(pattern: str, code: str) -> bool:
    """ "R07*" matches any code starting with R07; otherwise exact."""
    return code.startswith(pattern[:-1]) if pattern.endswith("*") else code == pattern


@dataclass
class SuiteOutcome:
    must_total: int = 0
    must_found: int = 0
    missed: list[str] = field(default_factory=list)
    must_not_violations: list[str] = field(default_factory=list)
    absent_violations: list[str] = field(default_factory=list)

    @property
    def must_recall(self) -> float:
        return self.must_found / self.must_total if self.must_total else 1.0


def check(case: dict[str, Any], result: Result, outcome: SuiteOutcome) -> None:
    suggested = [c.code for c in result.codes]
    ranked = [c.code for c in [*result.codes, *result.candidates]]
    for pattern in case["must"]:
        outcome.must_total += 1
        if any(matches(pattern, c) for c in suggested):
            outcome.must_found += 1
        else:
            outcome.missed.append(f"{case['id']}:{pattern} (got {suggested})")
    for pattern in case["must_not"]:
        for code in suggested:
            if matches(pattern, code):
                outcome.must_not_violations.append(f"{case['id']}:{code}")
    for pattern in case["absent"]:
        for code in ranked:
            if matches(pattern, code):
                outcome.absent_violations.append(f"{case['id']}:{code}")


def run_suite(coder: Any, cases: list[dict[str, Any]] | None = None) -> SuiteOutcome:
    outcome = SuiteOutcome()
    for case in cases or load_cases():
        enc = Encounter(encounter_id=case["id"], documents=[Document(document_id="d1", text=case["text"])])
        check(case, coder.suggest(enc), outcome)
    return outcome
