"""US coding conventions the rules apply: late effects of stroke (rule sequela, I.C.9.d), uncertain
diagnoses by setting (rule assertion, IV.H / II.H), the condition a screening is for, Z79 not beside O24.4
(rule status_codes), and Z33.1 / Z34 / gestational diabetes in pregnancy (rule pregnancy)."""

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


# --- one note, the codes it must and must not end with ------------------------------------------------------

_FEMALE_30 = {"sex": "female", "age": 30}


@pytest.mark.parametrize(
    ("case", "coded", "not_coded"),
    [
        pytest.param(
            {
                "note": "Dysarthria, late effect of prior intracerebral hemorrhage.",
                "setting": "outpatient",
                "mentions": [{"text": "intracerebral hemorrhage", "concepts": ["I61.9"], "historical": True}],
            },
            {"I69.122"},
            (),
            id="intracerebral_hemorrhage_leads_to_its_own_subcategory",
        ),
        pytest.param(
            {
                "note": "Acute stroke with L hemiparesis, tPA given.",
                "mentions": [{"text": "stroke", "concepts": ["I63.9"]}],
                "codes": [{"code": "I63.9", "confidence": 0.9, "evidence": "stroke"}],
            },
            {"I63.9"},
            ("I69",),
            id="current_stroke_with_a_deficit_stays_acute",
        ),
        pytest.param(_angina_case("inpatient"), {"I20.9"}, (), id="inpatient_possible_diagnosis_is_kept"),
        pytest.param(
            {
                "note": "Screening colonoscopy. Polyp of colon found and removed.",
                "setting": "outpatient",
                "mentions": [{"text": "Polyp of colon", "concepts": ["K63.5"]}],
                "codes": [{"code": "K63.5", "confidence": 0.9, "evidence": "Polyp of colon"}],
            },
            {"Z12.11", "K63.5"},
            (),
            id="a_condition_found_at_screening_is_coded",
        ),
        pytest.param(
            {
                "note": "28 wks pregnant with gestational diabetes, on insulin 10 units qhs.",
                "setting": "outpatient",
                "patient": _FEMALE_30,
                "mentions": [{"text": "gestational diabetes", "concepts": ["P70.0"]}],
            },
            {"O24.414", "Z3A.28"},
            ("Z79.4",),
            id="insulin_is_not_coded_z79_beside_gestational_diabetes",
        ),
        pytest.param(
            {
                "note": "Ankle sprain. Pt is 16 wks pregnant, pregnancy incidental to this visit.",
                "setting": "emergency",
                "patient": {"sex": "female", "age": 28},
                "codes": [{"code": "Z33.1", "confidence": 0.9, "evidence": "pregnancy"}],
            },
            {"Z33.1"},
            ("Z34",),
            id="incidental_pregnancy_keeps_z33_1_and_no_supervision",
        ),
        pytest.param(
            {
                "note": "Routine prenatal visit at 24 wks. UTI, urine culture positive.",
                "setting": "outpatient",
                "patient": {"sex": "female", "age": 28},
                "mentions": [{"text": "UTI", "concepts": ["N39.0"]}],
                "codes": [{"code": "N39.0", "confidence": 0.9, "evidence": "UTI"}],
            },
            {"O23.42"},
            ("Z34", "Z33"),
            id="no_supervision_code_beside_a_chapter_15_code",
        ),
        pytest.param(
            {
                "note": "G2P1 at 32 wks. Gestational diabetes, diet controlled.",
                "setting": "outpatient",
                "patient": _FEMALE_30,
                "mentions": [{"text": "Gestational diabetes", "concepts": ["P70.0"]}],
                "codes": [{"code": "E11.9", "confidence": 0.9, "evidence": "Gestational diabetes"}],
            },
            {"O24.410"},
            ("E11", "O24.1"),
            id="a_diabetes_code_on_a_gestational_diabetes_mention_becomes_o24_4",
        ),
        pytest.param(
            {
                "note": "Suspected UTI; dysuria and urinary frequency.",
                "setting": "outpatient",
                "mentions": [
                    {"text": "UTI", "concepts": ["N39.0"], "possible": True},
                    {"text": "urinary frequency", "concepts": ["R35.0"], "type": "sign_symptom"},
                ],
                "codes": [{"code": "N39.0", "confidence": 0.9, "evidence": ["UTI", "urinary frequency"]}],
            },
            set(),
            ("N39.0",),
            id="a_symptom_beside_the_possible_diagnosis_does_not_make_it_certain",
        ),
        pytest.param(
            {
                "note": "FHx: mother with breast cancer. Pt here for annual screening mammogram.",
                "setting": "outpatient",
                "patient": {"sex": "female", "age": 50},
                "mentions": [
                    {"text": "breast cancer", "concepts": ["C50.919"], "family": True},
                    {"text": "mammogram", "concepts": ["Z12.39"], "family": True},
                ],
            },
            {"Z12.31", "Z80.3"},
            (),
            id="a_family_flag_spilling_into_the_next_sentence_does_not_block_screening",
        ),
        pytest.param(
            {
                "note": "Mother had a screening mammogram last year.",
                "setting": "outpatient",
                "mentions": [{"text": "mammogram", "concepts": ["Z12.39"], "family": True}],
            },
            set(),
            ("Z12.31",),
            id="a_relatives_screening_is_not_the_patients",
        ),
    ],
)
def test_note_ends_with_the_codes_the_convention_gives(
    run_case: Run, case: dict[str, Any], coded: set[str], not_coded: tuple[str, ...]
) -> None:
    codes = _codes(run_case(case))
    assert coded <= set(codes), codes
    assert not any(c.startswith(not_coded) for c in codes), codes
