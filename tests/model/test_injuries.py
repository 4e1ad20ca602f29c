"""Injuries coded like a US coder (Guidelines I.C.19): the index walk reaches the injury code from note
shorthand ("Lac", "midshaft", "femoral", "ribs 7-9"), the tabular completes side and displacement, the
7th character comes from the encounter with placeholder X, and a ranker's under-threshold injury code the
index vouches for is coded when the note documents the encounter (`model.rules.injury`).

Wordings and sites differ on purpose from tests/model/us_notes.jsonl. The index is a tiny one in the CMS
CSV format, copied from the FY2025 Alphabetic Index lines it names; the tabular is the packaged one."""

from __future__ import annotations

import pytest

from medcode.data.icd10cm import load_icd10cm
from medcode.data.types import Assertion, CodeSuggestion, Document, Encounter, Evidence, Mention, Patient
from medcode.model.builtin import BuiltinCoder
from medcode.model.candidates.index_walk import SOURCE as WALK
from medcode.model.candidates.index_walk import count_words, side_words
from medcode.model.catalog import Knowledge
from medcode.model.rules import CodingRules
from medcode.model.rules.injury import VOUCHED
from tests.model.index_csv import suggested_codes, tree_from_csv

INDEX_CSV = """RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code
1,F,0,"Fracture, traumatic",,,(abduction) (adduction),T14.8
2,F,1,clavicle,,,,S42.00-
3,F,2,shaft,,,,S42.02-
4,F,3,nondisplaced,,,,S42.02-
5,F,1,"femur, femoral",,,,S72.9-
6,F,2,shaft,,,,S72.30-
7,F,1,rib,,,,S22.3-
8,F,2,multiple,,,,S22.4-
9,L,0,Laceration,,,,
10,L,1,thumb,,,,S61.019
11,L,2,left,,,,S61.012
12,L,2,right,,,,S61.011
13,C,0,Contusion,,,,T14.8
14,C,1,thigh,,,,S70.1-
"""


@pytest.fixture(scope="module")
def coder(tmp_path_factory: pytest.TempPathFactory) -> BuiltinCoder:
    return BuiltinCoder(Knowledge(index_tree=tree_from_csv(tmp_path_factory.mktemp("index"), INDEX_CSV)))


def _codes(coder: BuiltinCoder, text: str, setting: str = "emergency") -> list[str]:
    return suggested_codes(coder, text, setting=setting, sex="male")


# --- the walk from note shorthand -------------------------------------------------------------------------


def test_femoral_midshaft_after_a_fall_is_a_current_femur_shaft_fracture(coder: BuiltinCoder) -> None:
    # "femoral" -> femur, "midshaft" -> shaft; "s/p fall" tells the mechanism, not a past fracture
    codes = _codes(
        coder, "Admitted s/p fall with closed R femoral midshaft fx. Initial encounter.", "inpatient"
    )
    assert "S72.301A" in codes
    assert not [c for c in codes if c.startswith("Z87")]


def test_lac_is_a_laceration_with_the_side_before_the_site(coder: BuiltinCoder) -> None:
    assert "S61.012A" in _codes(coder, "Lac L thumb from box cutter, initial visit. 2 sutures placed.")
    assert "S61.011D" in _codes(
        coder, "Suture removal, f/u visit for lac of right thumb, healing well.", "outpatient"
    )


def test_counted_rib_fractures_are_multiple_with_placeholder_x(coder: BuiltinCoder) -> None:
    codes = _codes(coder, "F/u R ribs 7-9 fractures, routine healing.", "outpatient")
    assert "S22.41XD" in codes
    assert not [c for c in codes if c.startswith("S22.3")]
    assert count_words("two rib fractures") == count_words("rib fxs x3") == {"multiple"}
    assert count_words("R rib fx") == frozenset()


def test_clavicle_fracture_not_called_nondisplaced_is_coded_displaced(coder: BuiltinCoder) -> None:
    # Guidelines I.C.19.c.1: not documented as displaced or nondisplaced -> displaced
    assert "S42.021A" in _codes(coder, "ED: R clavicle fx, mid-shaft, closed. Initial encounter.")
    assert "S42.025A" in _codes(coder, "ED: nondisplaced L clavicle shaft fx, initial encounter.")


def test_bruise_is_a_contusion_of_the_documented_side(coder: BuiltinCoder) -> None:
    codes = _codes(coder, "ED: bruise of L thigh after fall off bike, initial encounter.")
    assert "S70.12XA" in codes
    assert not [c for c in codes if c.startswith("T14")]
    assert side_words("Lac R thumb") == {"right", "unilateral"}


# --- the rule: a ranker's injury code under its threshold ---------------------------------------------------


NOTE = "ED: contusion of L knee after fall, initial encounter."


@pytest.fixture(scope="module")
def rules() -> CodingRules:
    return CodingRules(load_icd10cm(), use_settings=False)


def _rules_codes(
    rules: CodingRules,
    candidate_rationale: str,
    note: str = NOTE,
    historical: bool = False,
    setting: str = "emergency",
) -> list[str]:
    phrase = "contusion of L knee"
    start = note.index(phrase)
    evidence = Evidence(document_id="d1", start=start, end=start + len(phrase), text=phrase)
    word = Evidence(document_id="d1", start=start, end=start + len("contusion"), text="contusion")
    mention = Mention(
        document_id="d1",
        start=start,
        end=start + len(phrase),
        text=phrase,
        type="injury",
        assertion=Assertion(historical=historical),
    )
    encounter = Encounter(
        encounter_id="e1",
        patient=Patient(age=30, sex="female"),
        setting=setting,
        documents=[Document(document_id="d1", text=note)],
    )
    codes = [
        CodeSuggestion(
            code="T14.8", confidence=0.6, evidence=[word], rationale="lexicon match on 'contusion'"
        )
    ]
    candidates = [
        CodeSuggestion(code="S80.02", confidence=0.2, evidence=[evidence], rationale=candidate_rationale),
    ]
    outcome = rules(encounter, [mention], codes, candidates)
    return [c.code for c in outcome.codes]


def test_index_walk_injury_under_threshold_is_coded_and_the_unspecified_site_gives_way(
    rules: CodingRules,
) -> None:
    codes = _rules_codes(rules, f"{WALK} match on 'contusion of L knee'")
    assert "S80.02XA" in codes
    assert not [c for c in codes if c.startswith("T14")]


def test_injury_code_found_by_name_similarity_only_is_not_promoted(rules: CodingRules) -> None:
    assert not [c for c in _rules_codes(rules, "dense match on 'contusion of L knee'") if c.startswith("S80")]


def test_past_injury_or_undocumented_encounter_is_not_promoted(rules: CodingRules) -> None:
    rationale = f"{WALK} match on 'contusion of L knee'"
    assert not [c for c in _rules_codes(rules, rationale, historical=True) if c.startswith("S80")]
    no_episode = "Seen today for contusion of L knee after fall."
    office = _rules_codes(rules, rationale, note=no_episode, setting="outpatient")
    assert not [c for c in office if c.startswith("S80")]
    # an emergency department visit is active treatment (Guidelines I.C.19.a): 7th character A
    assert "S80.02XA" in _rules_codes(rules, rationale, note=no_episode, setting="emergency")


def test_rule_reads_the_rationales_both_models_write() -> None:
    assert f"{WALK} match" in VOUCHED  # the trained model: "<source> match on ..."
    assert "alphabetic index walk" in VOUCHED  # the built-in model's name for the walk
