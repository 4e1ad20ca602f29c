"""E/M office-visit level from documented time or medical decision making."""

from __future__ import annotations

import pytest

from medcode.data.types import CodeSuggestion, Document, Encounter
from medcode.model.rules import CodingRules
from medcode.model.rules.em import EmDecision, EmLevelRule
from medcode.model.rules.state import RulesState


def _decide(rules: CodingRules, text: str) -> EmDecision | None:
    encounter = Encounter(
        encounter_id="em", setting="outpatient", documents=[Document(document_id="d1", text=text)]
    )
    state = RulesState.start(encounter, [], [], [], rules.tabular)
    return EmLevelRule().decide(state)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Established patient. Total time spent was 20 minutes.", "99213"),
        ("Established patient. Total time: 39 minutes.", "99214"),
        ("Established patient. Total time spent on the date of the encounter was 40 minutes.", "99215"),
        ("Established patient. I spent 12 minutes with the patient today.", "99212"),
        ("New patient. 30 minutes total time.", "99203"),
        ("New patient establishing care. Time spent: 61 minutes.", "99205"),
    ],
)
def test_level_from_documented_time(rules: CodingRules, text: str, code: str) -> None:
    decision = _decide(rules, text)
    assert decision is not None
    assert (decision.code, decision.basis) == (code, "time")
    assert decision.evidence and "minutes" in decision.evidence[0].text


def test_time_below_every_level_falls_back_to_mdm(rules: CodingRules) -> None:
    decision = _decide(rules, "Established patient. Total time 5 minutes. Prescribed amoxicillin.")
    assert decision is not None
    assert decision.basis == "mdm"
    assert decision.code == "99212"  # problems minimal, data minimal, risk moderate -> straightforward


def test_new_and_established_phrases(rules: CodingRules) -> None:
    new = _decide(rules, "New patient here to establish care. Total time 20 minutes.")
    assert new is not None and (new.patient, new.patient_stated, new.code) == ("new", True, "99202")
    unknown = _decide(rules, "Total time 20 minutes.")
    assert unknown is not None and (unknown.patient, unknown.patient_stated) == ("established", False)


def test_em_never_suggests_the_nurse_visit(rules: CodingRules) -> None:
    decision = _decide(rules, "Established patient, blood pressure check only. Total time 10 minutes.")
    assert decision is not None and decision.code != "99211"
    assert _decide(rules, "Established patient, blood pressure check only.") is None


def test_no_level_when_the_note_addresses_no_problem_and_states_no_time(rules: CodingRules) -> None:
    assert _decide(rules, "Established patient here for follow-up visit. Forms completed.") is None


def test_a_coded_problem_supports_a_level(rules: CodingRules) -> None:
    text = "Established patient here for follow-up visit. Essential hypertension, stable."
    encounter = Encounter(
        encounter_id="em", setting="outpatient", documents=[Document(document_id="d1", text=text)]
    )
    code = CodeSuggestion(
        system="ICD-10-CM", code="I10", description="Essential hypertension", confidence=0.9
    )
    state = RulesState.start(encounter, [], [code], [], rules.tabular)
    decision = EmLevelRule().decide(state)
    assert decision is not None and (decision.code, decision.mdm) == ("99212", "straightforward")


def test_one_self_limited_problem_is_minimal(rules: CodingRules) -> None:
    text = "New patient with insect bite of the forearm. Reassurance, OTC hydrocortisone."
    encounter = Encounter(
        encounter_id="em", setting="outpatient", documents=[Document(document_id="d1", text=text)]
    )
    code = CodeSuggestion(system="ICD-10-CM", code="S50.862A", description="Insect bite", confidence=0.9)
    state = RulesState.start(encounter, [], [code], [], rules.tabular)
    decision = EmLevelRule().decide(state)
    assert decision is not None and decision.code == "99202"
    assert "problems minimal" in decision.detail
