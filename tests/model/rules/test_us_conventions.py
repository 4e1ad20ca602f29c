"""US coding conventions the rules apply: late effects of stroke (rule sequela, I.C.9.d), uncertain
diagnoses by setting (rule assertion, IV.H / II.H), the condition a screening is for, Z79 not beside O24.4
(rule status_codes), and Z33.1 / Z34 / gestational diabetes in pregnancy (rule pregnancy). Single notes
with the codes they must and must not end with are cases of the behavioural suite (rules_cases.jsonl, ids
`us_*`); here are the conventions checked over several notes or settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from medcode.data.icd10cm import ICD10CM
from medcode.model.rules import RulesOutcome
from medcode.model.rules.resources import load_resource

Run = Callable[[dict[str, Any]], RulesOutcome]


def _codes(outcome: RulesOutcome) -> list[str]:
    return [c.code for c in outcome.codes]


def _coded_mention(
    note: str, text: str, code: str, *, patient: dict[str, Any], setting: str = "outpatient"
) -> dict[str, Any]:
    """A case whose one present mention `text` names `code`, suggested by the model at 0.9."""
    return {
        "note": note,
        "setting": setting,
        "patient": patient,
        "mentions": [{"text": text, "concepts": [code]}],
        "codes": [{"code": code, "confidence": 0.9, "evidence": text}],
    }


# --- sequelae of cerebrovascular disease -------------------------------------------------------------------


def test_every_sequela_category_is_a_header_with_billable_children(icd: ICD10CM) -> None:
    data = load_resource("sequelae.json")
    for condition in data["conditions"]:
        entry = icd.get(condition["category"])
        assert entry is not None and not entry.billable
        assert entry.title.lower().startswith("sequelae of")


@pytest.mark.parametrize(
    ("note", "mention", "historical", "code"),
    [
        ("Residual L hemiparesis from prior CVA 2 yrs ago.", "CVA", True, "I69.354"),
        ("Residual R hemiparesis from prior CVA.", "CVA", True, "I69.351"),
        ("Residual L hemiparesis from prior CVA; left handed.", "CVA", True, "I69.352"),
        ("Dysphagia as late effect of stroke.", "stroke", False, "I69.391"),
        ("Residual facial weakness after prior stroke.", "stroke", True, "I69.392"),
    ],
)
def test_old_stroke_with_a_residual_is_coded_i69_not_the_acute_code(
    run_case: Run, note: str, mention: str, historical: bool, code: str
) -> None:
    outcome = run_case(
        {
            "note": note,
            "setting": "outpatient",
            "mentions": [
                {
                    "text": mention,
                    "concepts": ["I63.9"],
                    "historical": historical,
                    "attributes": {} if historical else {"episode": "sequela"},
                }
            ],
            "codes": [{"code": "I63.9", "confidence": 0.8, "evidence": mention}],
        }
    )
    assert code in _codes(outcome), _codes(outcome)
    assert "I63.9" not in _codes(outcome)
    assert "I63.9" in [c.code for c in outcome.candidates]
    assert any(f.rule == "sequela" for f in outcome.firings)


@pytest.mark.parametrize(
    "note",
    ["History of stroke with no residual deficits.", "Prior stroke 2019, without residual deficits."],
)
def test_old_stroke_without_residual_gets_no_i69(run_case: Run, note: str) -> None:
    outcome = run_case(
        {
            "note": note,
            "setting": "outpatient",
            "mentions": [{"text": "stroke", "concepts": ["I63.9"], "historical": True}],
        }
    )
    assert not any(c.startswith("I69") for c in _codes(outcome)), _codes(outcome)


# --- uncertain diagnoses by setting ---------------------------------------------------------------------

_ANGINA = "Chest pain on exertion, possible angina."


def _angina_case(setting: str) -> dict[str, Any]:
    return {
        "note": _ANGINA,
        "setting": setting,
        "mentions": [
            {"text": "Chest pain", "concepts": ["R07.9"], "type": "sign_symptom"},
            {"text": "angina", "concepts": ["I20.9"], "possible": True},
        ],
        "codes": [
            {"code": "R07.9", "confidence": 0.9, "evidence": "Chest pain"},
            {"code": "I20.9", "confidence": 0.8, "evidence": ["angina", "Chest pain"]},
        ],
    }


@pytest.mark.parametrize("setting", ["outpatient", "emergency", "observation"])
def test_outpatient_possible_diagnosis_is_not_coded_even_beside_a_certain_symptom(
    run_case: Run, setting: str
) -> None:
    outcome = run_case(_angina_case(setting))
    assert _codes(outcome) == ["R07.9"]
    assert "uncertain_diagnosis:I20.9" in outcome.reasons


def test_inpatient_uncertain_diagnosis_is_coded_from_its_candidate(run_case: Run) -> None:
    note = "Discharge dx: suspected pulmonary embolism."
    outcome = run_case(
        {
            "note": note,
            "setting": "inpatient",
            "mentions": [{"text": "pulmonary embolism", "concepts": ["I26.99"], "possible": True}],
            "candidates": [
                {"code": "I26.99", "confidence": 0.6, "evidence": "pulmonary embolism"},
                {"code": "I26", "confidence": 0.7, "evidence": "pulmonary embolism"},
            ],
        }
    )
    assert "I26.99" in _codes(outcome)
    assert "uncertain_diagnosis:I26.99" in outcome.reasons
    outpatient = run_case(
        {
            "note": note,
            "setting": "outpatient",
            "mentions": [{"text": "pulmonary embolism", "concepts": ["I26.99"], "possible": True}],
            "candidates": [{"code": "I26.99", "confidence": 0.6, "evidence": "pulmonary embolism"}],
        }
    )
    assert "I26.99" not in _codes(outpatient)


# --- screening, follow-up and Z79 beside gestational diabetes -----------------------------------------------


@pytest.mark.parametrize(
    ("note", "condition", "concept", "screening"),
    [
        ("PSA drawn for prostate cancer screening.", "prostate cancer", "C61", "Z12.5"),
        ("Low-dose CT for lung cancer screening.", "lung cancer", "C34.90", "Z12.2"),
    ],
)
def test_the_condition_a_screening_is_for_is_not_coded(
    run_case: Run, note: str, condition: str, concept: str, screening: str
) -> None:
    outcome = run_case(_coded_mention(note, condition, concept, patient={"sex": "male", "age": 60}))
    assert screening in _codes(outcome)
    assert concept not in _codes(outcome)


# --- supervision of pregnancy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "code"),
    [
        ("Routine prenatal visit at 20 wks, first pregnancy, uncomplicated.", "Z34.02"),
        ("Routine OB visit, G2P1 at 30 wks, normal pregnancy.", "Z34.83"),
        ("New OB visit, G1P0, 9 wks by LMP.", "Z34.01"),
    ],
)
def test_routine_prenatal_visit_is_supervision_not_incidental(run_case: Run, note: str, code: str) -> None:
    outcome = run_case(
        {
            "note": note,
            "setting": "outpatient",
            "patient": {"sex": "female", "age": 28},
            "codes": [
                {"code": "Z33.1", "confidence": 0.9, "evidence": "pregnancy" if "pregnancy" in note else "OB"}
            ],
        }
    )
    assert code in _codes(outcome)
    assert "Z33.1" not in _codes(outcome)


def test_one_hypertensive_combination_code_only(run_case: Run) -> None:
    note = "Acute on chronic diastolic CHF. HTN. CKD stage 3b."
    outcome = run_case(
        {
            "note": note,
            "mentions": [
                {"text": "diastolic CHF", "concepts": ["I50.33"]},
                {"text": "HTN", "concepts": ["I10"]},
                {"text": "CKD stage 3b", "concepts": ["N18.32"]},
            ],
            "codes": [
                {"code": "I50.33", "confidence": 0.9, "evidence": "diastolic CHF"},
                {"code": "N18.32", "confidence": 0.9, "evidence": "CKD stage 3b"},
            ],
        }
    )
    hypertensive = [c for c in _codes(outcome) if c.startswith(("I10", "I11", "I12", "I13"))]
    assert hypertensive == ["I13.0"], _codes(outcome)


@pytest.mark.parametrize(("weeks", "coded"), [(8, True), (30, False)])
def test_vaginal_bleeding_in_early_pregnancy_is_o20(run_case: Run, weeks: int, coded: bool) -> None:
    note = f"{weeks} wks pregnant with vaginal bleeding."
    patient = {"sex": "female", "age": 29}
    outcome = run_case(
        _coded_mention(note, "vaginal bleeding", "N93.9", patient=patient, setting="emergency")
    )
    assert ("O20.9" in _codes(outcome)) is coded, _codes(outcome)
    assert ("N93.9" in _codes(outcome)) is not coded


@pytest.mark.parametrize(
    ("note", "history"),
    [
        ("Prostate cancer s/p radical prostatectomy 2018, PSA undetectable, no current treatment.", True),
        ("Prostate cancer s/p radical prostatectomy 2018, on leuprolide, PSA undetectable.", False),
        ("Prostate cancer, PSA 12, urology referral.", False),
    ],
)
def test_an_excised_malignancy_with_no_disease_left_is_history(
    run_case: Run, note: str, history: bool
) -> None:
    outcome = run_case(_coded_mention(note, "Prostate cancer", "C61", patient={"sex": "male", "age": 70}))
    assert ("Z85.46" in _codes(outcome)) is history, _codes(outcome)
    assert ("C61" in _codes(outcome)) is not history
