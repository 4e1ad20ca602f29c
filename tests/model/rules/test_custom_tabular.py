"""The rules are data-driven: on a tiny tabular XML written here (fictional codes, not the packaged
release) the same rules fire from its Excludes1, 7th-character, code-first and use-additional notes."""

from __future__ import annotations

import pytest

from medcode.data.icd10cm import ICD10CM, load_icd10cm_from
from medcode.data.types import CodeSuggestion, Document, Encounter, Evidence, Mention, Patient
from medcode.model.rules import CodingRules, audit_codes
from medcode.model.rules.age_sex import AgeSexRule
from medcode.model.rules.combinations import CombinationRule, load_combinations
from medcode.model.rules.state import RulesOutcome, RulesState

TINY_TABULAR = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>2031</version>
  <chapter>
    <name>30</name>
    <desc>Fictional test chapter (X01-X09)</desc>
    <section id="X01-X09">
      <desc>Widget and gadget disorders (X01-X09)</desc>
      <diag>
        <name>X01</name>
        <desc>Widget disease</desc>
        <excludes1><note>gadget disease (X02.-)</note></excludes1>
        <diag><name>X01.0</name><desc>Widget disease, right side</desc></diag>
        <diag><name>X01.1</name><desc>Widget disease, left side</desc></diag>
        <diag><name>X01.9</name><desc>Widget disease, unspecified side</desc></diag>
      </diag>
      <diag>
        <name>X02</name>
        <desc>Gadget disease</desc>
      </diag>
      <diag>
        <name>X03</name>
        <desc>Sprocket injury</desc>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
          <extension char="D">subsequent encounter</extension>
          <extension char="S">sequela</extension>
        </sevenChrDef>
        <diag><name>X03.1</name><desc>Sprocket injury of arm</desc></diag>
      </diag>
      <diag>
        <name>X04</name>
        <desc>Cog neuropathy in diseases classified elsewhere</desc>
        <codeFirst><note>underlying gadget disease (X02)</note></codeFirst>
      </diag>
      <diag>
        <name>X05</name>
        <desc>Gear syndrome with widget kidney</desc>
        <useAdditionalCode><note>code to identify stage of gear kidney disease (X06.-)</note></useAdditionalCode>
      </diag>
      <diag>
        <name>X06</name>
        <desc>Gear kidney disease</desc>
        <diag><name>X06.1</name><desc>Gear kidney disease, stage 1</desc></diag>
        <diag><name>X06.2</name><desc>Gear kidney disease, stage 2</desc></diag>
      </diag>
    </section>
  </chapter>
</ICD10CM.tabular>
"""


@pytest.fixture(scope="module")
def tiny_icd(tmp_path_factory: pytest.TempPathFactory) -> ICD10CM:
    path = tmp_path_factory.mktemp("tabular") / "tiny-tabular.xml"
    path.write_text(TINY_TABULAR, encoding="utf-8")
    return load_icd10cm_from(path)


@pytest.fixture(scope="module")
def tiny_rules(tiny_icd: ICD10CM) -> CodingRules:
    return CodingRules(tiny_icd, use_settings=False)


def _inputs(
    text: str, phrases: list[str], codes: list[tuple[str, float, str]]
) -> tuple[Encounter, list[Mention], list[CodeSuggestion]]:
    encounter = Encounter(encounter_id="t", documents=[Document(document_id="d1", text=text)])
    mentions = []
    for phrase in phrases:
        start = text.index(phrase)
        mentions.append(Mention(start=start, end=start + len(phrase), text=phrase))
    suggestions = []
    for code, confidence, phrase in codes:
        start = text.index(phrase)
        evidence = [Evidence(document_id="d1", start=start, end=start + len(phrase), text=phrase)]
        suggestions.append(CodeSuggestion(code=code, confidence=confidence, evidence=evidence))
    return encounter, mentions, suggestions


def _coded(
    rules: CodingRules, text: str, phrases: list[str], codes: list[tuple[str, float, str]]
) -> RulesOutcome:
    """The rules' outcome for `codes` (code, confidence, evidence phrase) with `phrases` as the mentions."""
    return rules(*_inputs(text, phrases, codes), [])


def test_custom_tabular_is_what_the_rules_read(tiny_rules: CodingRules) -> None:
    assert tiny_rules.code_set_version == "ICD-10-CM 2031"


def test_specificity_picks_child_from_custom_titles(tiny_rules: CodingRules) -> None:
    text = "Widget disease of the right side."
    outcome = _coded(tiny_rules, text, ["Widget disease of the right side"], [("X01", 0.8, "Widget disease")])
    assert [c.code for c in outcome.codes] == ["X01.0"]
    assert [c.code for c in outcome.candidates] == ["X01"]


def test_excludes1_fires_from_custom_note(tiny_rules: CodingRules) -> None:
    text = "Widget disease, left side. Gadget disease suspected earlier."
    outcome = _coded(
        tiny_rules,
        text,
        ["Widget disease, left side", "Gadget disease"],
        [("X01.1", 0.9, "Widget disease"), ("X02", 0.4, "Gadget")],
    )
    assert [c.code for c in outcome.codes] == ["X01.1"]
    assert "excludes1" in [f.rule for f in outcome.firings]
    assert "excludes1:X02" in outcome.codes[0].warnings


def test_seventh_character_from_custom_definition(tiny_rules: CodingRules) -> None:
    text = "Initial encounter for sprocket injury of the arm."
    outcome = _coded(tiny_rules, text, ["sprocket injury of the arm"], [("X03.1", 0.7, "sprocket injury")])
    assert [c.code for c in outcome.codes] == ["X03.1XXA"]


def test_code_first_and_use_additional_from_custom_notes(tiny_rules: CodingRules) -> None:
    text = "Cog neuropathy. Gear syndrome; gear kidney disease stage 2."
    outcome = _coded(
        tiny_rules,
        text,
        ["Cog neuropathy", "Gear syndrome", "gear kidney disease stage 2"],
        [("X04", 0.7, "Cog neuropathy"), ("X05", 0.8, "Gear syndrome")],
    )
    assert "needs_etiology:X04" in outcome.reasons
    assert "X06.2" in [c.code for c in outcome.codes]


def test_combination_and_age_sex_rules_take_custom_data(tiny_icd: ICD10CM) -> None:
    text = "Widget disease right side and gadget disease."
    encounter, mentions, codes = _inputs(
        text,
        ["Widget disease right side", "gadget disease"],
        [("X01.0", 0.8, "Widget"), ("X02", 0.7, "gadget")],
    )
    encounter.patient = Patient(age=5, sex="male")
    combinations = load_combinations(
        {
            "combinations": [
                {
                    "name": "widget_with_gadget",
                    "requires": {"widget": ["X01"], "gadget": ["X02"]},
                    "drop": {"widget": ["X01"], "gadget": ["X02"]},
                    "result": [{"code": "X05"}],
                }
            ]
        }
    )
    rules = CodingRules(tiny_icd, use_settings=False)
    rules.rules = [
        CombinationRule(combinations),
        AgeSexRule({"sex_edits": [{"sex": "female", "label": "gear", "codes": ["X05"]}], "age_edits": []}),
    ]
    state = RulesState.start(encounter, mentions, codes, [], rules.tabular)
    for rule in rules.rules:
        rule(state)
    assert [c.code for c in state.codes] == ["X05"]
    assert {c.code for c in state.candidates} == {"X01.0", "X02"}
    assert "age_sex_conflict:X05" in state.reasons


def test_audit_counts_on_custom_tabular(tiny_rules: CodingRules) -> None:
    audit = audit_codes(["X01", "X01.1", "X02", "X03.1", "X03.1XXA"], tiny_rules.tabular)
    assert audit.non_billable == ["X01"]
    assert audit.missing_seventh == ["X03.1"]
    assert audit.excludes1_pairs == [("X01", "X02"), ("X01.1", "X02")]
    assert not audit.clean
