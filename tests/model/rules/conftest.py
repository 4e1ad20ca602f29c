"""Fixtures for the coding-rules tests: one rules step over the packaged ICD-10-CM, and a small builder
that turns a case (note text, phrases, codes) into the step's inputs with real character offsets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medcode.data.icd10cm import ICD10CM, load_icd10cm
from medcode.data.types import Assertion, CodeSuggestion, Document, Encounter, Evidence, Mention, Patient
from medcode.model.rules import CodingRules, RulesOutcome


@pytest.fixture(scope="session")
def icd() -> ICD10CM:
    return load_icd10cm()


@pytest.fixture(scope="session")
def rules(icd: ICD10CM) -> CodingRules:
    return CodingRules(icd, use_settings=False)


def locate(text: str, phrase: str) -> tuple[int, int, str]:
    """Offsets of `phrase` in `text`; 'phrase#2' is its second occurrence."""
    wanted, _, nth = phrase.partition("#")
    start = -1
    for _ in range(int(nth or 1)):
        start = text.find(wanted, start + 1)
        if start < 0:
            raise AssertionError(f"phrase {wanted!r} not in the case note")
    return start, start + len(wanted), wanted


def build_inputs(
    case: dict[str, Any],
) -> tuple[Encounter, list[Mention], list[CodeSuggestion], list[CodeSuggestion]]:
    text = case["note"]
    encounter = Encounter(
        encounter_id=case.get("id", "case"),
        patient=Patient(**case.get("patient", {})),
        setting=case.get("setting", "inpatient"),
        date=case.get("date"),
        documents=[Document(document_id="d1", text=text)],
    )
    mentions = []
    for spec in case.get("mentions", []):
        start, end, phrase = locate(text, spec["text"])
        flags = {
            k: bool(spec.get(k, False))
            for k in ("negated", "possible", "historical", "family", "hypothetical")
        }
        mentions.append(
            Mention(
                document_id="d1",
                start=start,
                end=end,
                text=phrase,
                type=spec.get("type", "condition"),
                assertion=Assertion(**flags),
                attributes=spec.get("attributes", {}),
                concepts=spec.get("concepts", []),
            )
        )

    def suggestion(spec: dict[str, Any]) -> CodeSuggestion:
        phrases = spec.get("evidence", [])
        phrases = [phrases] if isinstance(phrases, str) else phrases
        evidence = []
        for phrase in phrases:
            start, end, found = locate(text, phrase)
            evidence.append(Evidence(document_id="d1", start=start, end=end, text=found))
        return CodeSuggestion(
            system=spec.get("system", "ICD-10-CM"),
            code=spec["code"],
            description=spec.get("description", ""),
            confidence=spec["confidence"],
            evidence=evidence,
            rationale=spec.get("rationale", "ranked"),
        )

    codes = [suggestion(s) for s in case.get("codes", [])]
    candidates = [suggestion(s) for s in case.get("candidates", [])]
    return encounter, mentions, codes, candidates


@pytest.fixture
def run_case(rules: CodingRules, tmp_path: Path) -> Callable[[dict[str, Any]], RulesOutcome]:
    def run(case: dict[str, Any]) -> RulesOutcome:
        step = rules
        if case.get("ncci_rows"):
            path = tmp_path / "ncci.txt"
            path.write_text("\n".join("\t".join(row) for row in case["ncci_rows"]) + "\n", encoding="utf-8")
            step = CodingRules(rules.tabular.icd, ncci_file=path, use_settings=False)
        return step(*build_inputs(case))

    return run
