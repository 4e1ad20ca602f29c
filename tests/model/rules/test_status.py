"""Status, screening, immunization, follow-up and family history Z codes (rule status_codes), and personal
history codes for past conditions no suggested code stands on (rule history_of)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from medcode.data.icd10cm import ICD10CM
from medcode.model.rules import RulesOutcome
from medcode.model.rules.resources import load_resource
from medcode.model.rules.status import load_tables

Run = Callable[[dict[str, Any]], RulesOutcome]


def _codes(outcome: RulesOutcome) -> list[str]:
    return [c.code for c in outcome.codes]


def test_every_table_code_is_billable(icd: ICD10CM) -> None:
    data = load_resource("status_codes.json")
    codes = [e["code"] for g in data["groups"] for e in g["entries"]]
    codes += [e["code"] for e in data["family_history"]["entries"]]
    for code in codes:
        entry = icd.get(code)
        assert entry is not None and entry.billable, code
    assert all(g["section"].startswith("I.C.21.c") for g in data["groups"])
    assert load_tables().phrases


@pytest.mark.parametrize(
    ("note", "code"),
    [
        ("Type 2 diabetes on insulin glargine 20 units qhs.", "Z79.4"),
        ("T2DM on metformin 500 mg bid.", "Z79.84"),
        ("Chronic AFib on warfarin, INR 2.4.", "Z79.01"),
        ("CAD. Continue aspirin 81 mg daily.", "Z79.82"),
        ("COPD on chronic prednisone 10 mg daily.", "Z79.52"),
        ("s/p L BKA 2018.", "Z89.512"),
        ("s/p splenectomy after MVC.", "Z90.81"),
        ("ESRD on hemodialysis MWF.", "Z99.2"),
        ("Here for screening mammogram.", "Z12.31"),
        ("Flu shot given today.", "Z23"),
    ],
)
def test_stated_status_gets_its_z_code_with_the_phrase_as_evidence(
    run_case: Run, note: str, code: str
) -> None:
    outcome = run_case({"note": note, "setting": "outpatient"})
    added = next(c for c in outcome.codes if c.code == code)
    assert added.evidence and all(note[e.start : e.end] == e.text for e in added.evidence)
    assert "status_codes" in added.rationale and "I.C.21.c" in added.rationale


@pytest.mark.parametrize(
    "note",
    [
        "Type 2 diabetes, not on insulin.",
        "T2DM. Will consider starting insulin if A1c stays high.",
        "Warfarin was discontinued after the bleed.",
        "AFib, no anticoagulation given fall risk.",
        "Allergic to aspirin.",
        "Insulin resistance noted.",
    ],
)
def test_negated_deferred_or_stopped_drug_gets_no_z79(run_case: Run, note: str) -> None:
    outcome = run_case({"note": note, "setting": "outpatient"})
    assert not any(c.startswith("Z79") for c in _codes(outcome)), _codes(outcome)


def test_drug_named_on_a_negated_mention_gets_no_z79(run_case: Run) -> None:
    note = "Patient reports insulin use."
    outcome = run_case({"note": note, "mentions": [{"text": "insulin", "negated": True}]})
    assert "Z79.4" not in _codes(outcome)


def test_family_mention_gives_family_history_never_the_condition(run_case: Run) -> None:
    note = "FHx: mother with breast cancer."
    outcome = run_case(
        {
            "note": note,
            "mentions": [{"text": "breast cancer", "family": True, "concepts": ["C50.919"]}],
            "codes": [{"code": "C50.919", "confidence": 0.9, "evidence": "breast cancer"}],
        }
    )
    assert "C50.919" not in _codes(outcome)
    added = next(c for c in outcome.codes if c.code == "Z80.3")
    assert [e.text for e in added.evidence] == ["breast cancer"]


def test_negated_family_mention_gives_no_family_history(run_case: Run) -> None:
    note = "No FHx of cancer."
    outcome = run_case(
        {
            "note": note,
            "mentions": [{"text": "cancer", "family": True, "negated": True, "concepts": ["C80.1"]}],
        }
    )
    assert not any(c.startswith("Z80") for c in _codes(outcome))


def test_surveillance_after_completed_cancer_treatment_gets_z08_beside_the_history_code(
    run_case: Run,
) -> None:
    note = "Hx of colon cancer, completed chemo. Here for surveillance colonoscopy."
    case = {"note": note, "mentions": [{"text": "colon cancer", "historical": True, "concepts": ["C18.9"]}]}
    assert {"Z85.038", "Z08"} <= set(_codes(run_case(case)))


def test_surveillance_without_a_cancer_history_gets_no_z08(run_case: Run) -> None:
    assert "Z08" not in _codes(run_case({"note": "Here for surveillance colonoscopy."}))


def test_uncoded_past_condition_gets_the_index_history_code(run_case: Run) -> None:
    note = "Hx of pneumonia last winter, resolved."
    outcome = run_case(
        {"note": note, "mentions": [{"text": "pneumonia", "historical": True, "concepts": ["J18.9"]}]}
    )
    added = next(c for c in outcome.codes if c.code == "Z87.01")
    assert [e.text for e in added.evidence] == ["pneumonia"]
    assert "history_of" in added.rationale


def test_past_condition_also_documented_as_current_gets_no_history_code(run_case: Run) -> None:
    note = "Hx of pneumonia. Now pneumonia again on CXR."
    outcome = run_case(
        {
            "note": note,
            "mentions": [
                {"text": "pneumonia", "historical": True, "concepts": ["J18.9"]},
                {"text": "pneumonia#2", "concepts": ["J18.9"]},
            ],
        }
    )
    assert "Z87.01" not in _codes(outcome)


def test_old_stroke_with_residual_is_not_filed_as_history_without_deficits(run_case: Run) -> None:
    note = "Residual left hemiparesis from prior CVA."
    outcome = run_case(
        {"note": note, "mentions": [{"text": "CVA", "historical": True, "concepts": ["I63.9"]}]}
    )
    assert "Z86.73" not in _codes(outcome)


def test_pregnancy_note_codes_chapter_15_and_weeks_instead_of_the_plain_code(run_case: Run) -> None:
    note = "Pregnant pt at 30 wks with pre-existing essential hypertension."
    outcome = run_case(
        {
            "note": note,
            "setting": "outpatient",
            "patient": {"age": 30, "sex": "female"},
            "mentions": [{"text": "essential hypertension", "concepts": ["I10"]}],
            "codes": [{"code": "I10", "confidence": 0.9, "evidence": "essential hypertension"}],
        }
    )
    assert {"O10.013", "Z3A.30"} <= set(_codes(outcome)) and "I10" not in _codes(outcome)
    weeks = next(c for c in outcome.codes if c.code == "Z3A.30")
    assert weeks.evidence and "30 wks" in weeks.evidence[0].text


def test_wrong_weeks_code_moves_out_and_no_pregnancy_codes_without_pregnancy(run_case: Run) -> None:
    note = "28 yo G1P0 at 10 weeks gestation with hyperemesis."
    outcome = run_case({"note": note, "codes": [{"code": "Z3A.28", "confidence": 0.9, "evidence": "28 yo"}]})
    assert "Z3A.10" in _codes(outcome) and "Z3A.28" not in _codes(outcome)
    plain = run_case(
        {
            "note": "Essential hypertension at 30 years.",
            "codes": [{"code": "I10", "confidence": 0.9, "evidence": "Essential hypertension"}],
        }
    )
    assert _codes(plain) == ["I10"]
