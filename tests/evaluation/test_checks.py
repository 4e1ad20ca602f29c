"""Safety (evidence resting on negated/family/hypothetical mentions) and coding-rule checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from data.types import CodeSuggestion, Document, Encounter, Evidence, Result
from evaluation import checks
from tests.evaluation.fakes import fake_extract

TEXT = "Patient with diabetes. No pneumonia. Mother had cancer."


def _encounter() -> Encounter:
    return Encounter(encounter_id="e1", documents=[Document(document_id="d1", text=TEXT)])


def _suggest(
    code: str, word: str | None, system: str = "ICD-10-CM", warnings: list[str] | None = None
) -> CodeSuggestion:
    evidence = []
    if word is not None:
        start = TEXT.index(word)
        evidence = [Evidence(document_id="d1", start=start, end=start + len(word))]
    return CodeSuggestion(
        system=system,
        code=code,
        confidence=0.9,
        evidence=evidence,  # type: ignore[arg-type]
        warnings=warnings or [],
    )


def _result(*codes: CodeSuggestion) -> Result:
    return Result(encounter_id="e1", model_version="m", code_set_version="v", codes=list(codes))


def test_code_on_negated_or_family_mention_is_counted_unsafe() -> None:
    result = _result(
        _suggest("E11.9", "diabetes"),
        _suggest("J18.9", "pneumonia"),
        _suggest("C80.1", "cancer"),
        _suggest("R69", None),
    )
    out = checks.safety_check("diagnosis", [_encounter()], [result], fake_extract)
    assert out["checked"] is True
    assert out["suggested_codes"] == 4
    assert out["negated_family_hypothetical_only"] == 2
    assert out["by_assertion"] == {"negated": 1, "family": 1, "hypothetical": 0}
    assert out["supported"] == 1
    assert out["no_evidence"] == 1


def test_evidence_with_one_present_mention_is_supported() -> None:
    start = TEXT.index("diabetes")
    end = TEXT.index("pneumonia") + len("pneumonia")
    code = CodeSuggestion(
        code="E11.9", confidence=0.9, evidence=[Evidence(document_id="d1", start=start, end=end)]
    )
    verdict, _ = checks.classify_evidence(code, _encounter(), lambda d: fake_extract(TEXT, d))
    assert verdict == "supported"


def test_evidence_pointing_outside_the_note_is_invalid() -> None:
    code = CodeSuggestion(
        code="E11.9", confidence=0.9, evidence=[Evidence(document_id="nope", start=0, end=3)]
    )
    verdict, _ = checks.classify_evidence(code, _encounter(), lambda d: [])
    assert verdict == "invalid_evidence"


def test_safety_without_pipeline_reports_unchecked() -> None:
    out = checks.safety_check("diagnosis", [_encounter()], [_result(_suggest("E11.9", "diabetes"))], None)
    assert out["checked"] is False
    assert out["negated_family_hypothetical_only"] is None


def test_safety_counts_only_the_task_asked() -> None:
    result = _result(_suggest("0DTJ4ZZ", "pneumonia", system="ICD-10-PCS"))
    assert checks.safety_check("diagnosis", [_encounter()], [result], fake_extract)["suggested_codes"] == 0
    assert (
        checks.safety_check("procedure", [_encounter()], [result], fake_extract)[
            "negated_family_hypothetical_only"
        ]
        == 1
    )


@dataclass
class Entry:
    code: str
    parent: str | None
    billable: bool
    excludes1_refs: tuple[str, ...] = ()
    seventh_chars: dict[str, str] = field(default_factory=dict)


class TinyTerminology:
    """E11 > E11.9 (billable), E10 > E10.9, S52 > S52.5 (7th characters)."""

    def __init__(self) -> None:
        seventh = {"A": "initial encounter", "D": "subsequent encounter"}
        rows = [
            Entry("E11", None, False, ("E10",)),
            Entry("E11.9", "E11", True),
            Entry("E10", None, False),
            Entry("E10.9", "E10", True),
            Entry("S52", None, False, (), seventh),
            Entry("S52.5", "S52", False, (), seventh),
            Entry("S52.501", "S52.5", False, (), seventh),
            Entry("S52.501A", "S52.501", True, (), seventh),
        ]
        self.entries = {e.code: e for e in rows}

    def get(self, code: str) -> Entry | None:
        return self.entries.get(code)


def test_rules_count_headers_excludes1_pairs_and_missing_seventh() -> None:
    result = _result(
        _suggest("E11.9", "diabetes", warnings=["excludes1:E10.9", "specificity:E11"]),
        _suggest("E10.9", "diabetes"),
        _suggest("E11", "diabetes"),
        _suggest("S52.501", "diabetes"),
        _suggest("S52.501A", "diabetes", warnings=["seventh_character:A"]),
        _suggest("Q99.9", "diabetes"),
    )
    out = checks.rules_check("diagnosis", [result], TinyTerminology())
    assert out["checked"] is True
    assert out["non_billable"] == 2  # E11, S52.501
    assert out["missing_seventh_character"] == 1  # S52.501
    assert out["not_in_code_set"] == 1  # Q99.9
    # E11 excludes E10: E10.9 with E11 and with E11.9 (inherited note)
    assert out["excludes1_pairs"] == 2
    assert out["rule_firings"] == {"excludes1": 1, "seventh_character": 1, "specificity": 1}
    assert out["codes_with_warnings"] == 2


def test_rules_without_terminology_still_count_firings() -> None:
    out = checks.rules_check("diagnosis", [_result(_suggest("E11.9", "diabetes", warnings=["x:y"]))], None)
    assert out["checked"] is False
    assert out["non_billable"] is None
    assert out["rule_firings"] == {"x": 1}


@pytest.mark.parametrize(
    ("pattern", "code", "covered"),
    [
        ("E10", "E10.9", True),
        ("E10", "E11.9", False),
        ("E11.2-", "E11.22", True),
        ("E11.2-", "E11.9", False),
        ("N18.1-N18.6", "N18.30", True),
        ("N18.1-N18.6", "N18.9", False),
        ("E08-E13", "E11.65", True),
        ("E08-E13", "E14", False),
    ],
)
def test_excludes1_pattern_coverage(pattern: str, code: str, covered: bool) -> None:
    assert checks.pattern_matches(pattern, code) is covered


def test_rules_on_the_real_tabular() -> None:
    from data.icd10cm import load_icd10cm

    icd = load_icd10cm()
    assert checks.requires_seventh_character(icd, "S52.501")
    assert not checks.requires_seventh_character(icd, "S52.501A")
    assert not checks.requires_seventh_character(icd, "E11.22")
    assert ("E10.9", "E11.9") in checks.excludes1_pairs(icd, ["E11.9", "E10.9", "I10"])
