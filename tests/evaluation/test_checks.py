"""Safety (evidence resting on negated/family/hypothetical mentions) and coding-rule checks."""

from __future__ import annotations

import pytest

from medcode.data.icd10cm import ICD10CM, load_icd10cm
from medcode.data.types import CodeSuggestion, Document, Encounter, Evidence, Result
from medcode.evaluation import checks
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


@pytest.fixture(scope="module")
def icd() -> ICD10CM:
    return load_icd10cm()


def test_rules_count_headers_excludes1_pairs_and_missing_seventh(icd: ICD10CM) -> None:
    result = _result(
        _suggest("E11.9", "diabetes", warnings=["excludes1:E10.9", "specificity:E11"]),
        _suggest("E10.9", "diabetes"),
        _suggest("E11", "diabetes"),
        _suggest("S52.501", "diabetes"),
        _suggest("S52.501A", "diabetes", warnings=["seventh_character:A"]),
        _suggest("Q99.99", "diabetes"),
    )
    out = checks.rules_check("diagnosis", [result], icd)
    assert out["checked"] is True
    assert out["non_billable"] == 1  # E11 (a category header)
    assert out["missing_seventh_character"] == 1  # S52.501
    assert out["not_in_code_set"] == 1  # Q99.99
    # E10 and E11 exclude each other: E10.9 with E11.9 and with the header E11 (E11 with E11.9 is no pair)
    assert out["excludes1_pairs"] == 2
    assert sorted(out["examples"]["excludes1_pairs"]) == ["E10.9+E11", "E11.9+E10.9"]
    assert out["rule_firings"] == {"excludes1": 1, "seventh_character": 1, "specificity": 1}
    assert out["codes_with_warnings"] == 2


def test_rules_check_counts_what_the_rules_audit_counts(icd: ICD10CM) -> None:
    from medcode.model.rules import RuleTabular, audit_codes

    codes = ["E11.9", "E10.9", "E11", "S52.501", "I10", "I11.9", "K50.90", "K51.90", "R40.20", "E11.641"]
    audit = audit_codes(codes, RuleTabular(icd))
    out = checks.rules_check("diagnosis", [_result(*(_suggest(c, "diabetes") for c in codes))], icd)
    assert out["excludes1_pairs"] == len(audit.excludes1_pairs)
    assert out["non_billable"] + out["not_in_code_set"] == len(audit.non_billable)
    assert out["missing_seventh_character"] == len(audit.missing_seventh)


def test_excludes1_note_linking_a_concept_to_a_disease_is_not_a_pair(icd: ICD10CM) -> None:
    # R40.2 (coma) excludes "somnolence, stupor and coma in diabetes (E08-E13)": only diabetes codes
    # documenting a coma are excluded, not every diabetes code (the old check counted such false pairs)
    assert checks.audit_final_codes(["R40.20", "E11.9"], icd)["excludes1_pairs"] == []
    assert checks.audit_final_codes(["R40.20", "E11.641"], icd)["excludes1_pairs"] == ["R40.20+E11.641"]


def test_rules_without_terminology_still_count_firings() -> None:
    out = checks.rules_check("diagnosis", [_result(_suggest("E11.9", "diabetes", warnings=["x:y"]))], None)
    assert out["checked"] is False
    assert out["non_billable"] is None
    assert out["rule_firings"] == {"x": 1}


def test_rules_check_reuses_one_tabular_view_per_release(icd: ICD10CM) -> None:
    assert checks.rule_tabular(icd) is checks.rule_tabular(icd)
    view = checks.rule_tabular(icd)
    assert checks.rule_tabular(view) is view
