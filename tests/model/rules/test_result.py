"""model/result.py around the rules step: the ranked list keeps the ranker's order through the rules, the
rules can be switched off, and a broken NCCI file is a clear error, never a silent skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.data.errors import MedcodeError
from medcode.data.types import CodeSuggestion, Document, Encounter, Evidence, Mention, Result
from medcode.model.result import Scored, build_result, keep_ranker_order
from medcode.model.rules import CodingRules
from medcode.model.rules.ncci import NcciFileError
from medcode.model.rules.pipeline import RulesConfig, build_rules, load_rules, save_rules
from medcode.model.rules.state import RulesOutcome
from medcode.model.thresholds import TaskThresholds
from medcode.settings import reset_settings

TEXT = "Alpha. Beta. Gamma. Delta."


def _encounter() -> Encounter:
    return Encounter(encounter_id="e1", documents=[Document(document_id="d1", text=TEXT)])


def _scored(code: str, confidence: float, eligible: bool = True) -> Scored:
    return Scored(
        system="ICD-10-CM",
        code=code,
        confidence=confidence,
        evidence=[Evidence(document_id="d1", start=0, end=5)],
        eligible=eligible,
    )


def _thresholds(task: str) -> TaskThresholds:
    return TaskThresholds(decision=0.5, auto_accept=1.01)


class MoveOut:
    """A stand-in rules step that takes `code` out of the suggested set (to the end of the candidates,
    as the real step does) and may add a code."""

    def __init__(self, code: str, add: CodeSuggestion | None = None) -> None:
        self.code = code
        self.add = add

    def __call__(
        self,
        encounter: Encounter,
        mentions: list[Mention],
        codes: list[CodeSuggestion],
        candidates: list[CodeSuggestion],
    ) -> RulesOutcome:
        moved = [c for c in codes if c.code == self.code]
        kept = [c for c in codes if c.code != self.code]
        extra = [self.add] if self.add is not None else []
        return RulesOutcome(codes=kept + extra, candidates=[*candidates, *moved], reasons=[], firings=[])


def _ranked_codes(rules: object) -> list[str]:
    scored = [
        _scored("A01.0", 0.9),  # suggested
        _scored("B01.9", 0.9, eligible=False),  # same confidence, a candidate
        _scored("C01", 0.9),  # suggested
        _scored("D50.9", 0.4),
    ]
    return [c.code for c in _build(scored, rules).ranked("diagnosis")]


def _build(scored: list[Scored], rules: object) -> Result:
    return build_result(
        _encounter(),
        scored,
        _thresholds,
        model_version="m",
        code_set_version="v",
        calibrated=False,
        rules=rules,
    )


def test_a_code_the_rules_take_out_keeps_its_place_in_the_ranking() -> None:
    assert _ranked_codes(None) == ["A01.0", "C01", "B01.9", "D50.9"]
    # A01.0 moved out: still first, ahead of the tied code C01 kept and the candidate B01.9
    assert _ranked_codes(MoveOut("A01.0")) == ["A01.0", "C01", "B01.9", "D50.9"]
    assert _ranked_codes(MoveOut("C01")) == ["A01.0", "C01", "B01.9", "D50.9"]


def test_a_code_the_rules_add_follows_the_rankers_codes() -> None:
    added = CodeSuggestion(code="E11.9", confidence=0.9, evidence=[])
    ranked = _ranked_codes(MoveOut("C01", add=added))
    assert ranked == ["A01.0", "C01", "B01.9", "D50.9", "E11.9"]
    candidates = [
        CodeSuggestion(code="E11.8", confidence=0.9),  # added by a rule: no rank
        CodeSuggestion(code="B01.9", confidence=0.9).set_rank(5),
        CodeSuggestion(code="A01.0", confidence=0.9).set_rank(2),
    ]
    assert [c.code for c in keep_ranker_order(candidates)] == ["A01.0", "B01.9", "E11.8"]


def test_without_ranks_the_ranking_is_by_confidence_codes_first() -> None:
    result = Result(
        encounter_id="e",
        model_version="m",
        code_set_version="v",
        codes=[CodeSuggestion(code="B01", confidence=0.5), CodeSuggestion(code="C01", confidence=0.7)],
        candidates=[CodeSuggestion(code="A01", confidence=0.5), CodeSuggestion(code="D01", confidence=0.9)],
    )
    assert [c.code for c in result.ranked("diagnosis")] == ["D01", "C01", "B01", "A01"]


def test_ranks_do_not_travel_in_the_json() -> None:
    result = _build([_scored("A01.0", 0.9)], None)
    assert result.codes[0].rank == 0
    assert "rank" not in result.model_dump()["codes"][0]


def test_a_rules_bug_keeps_the_suggestions_and_routes() -> None:
    def broken(*_: object) -> RulesOutcome:
        raise RuntimeError("bug")

    result = _build([_scored("A01.0", 0.9)], broken)
    assert [c.code for c in result.codes] == ["A01.0"]
    assert "rules_error" in result.routing.reasons


def test_rules_can_be_switched_off() -> None:
    assert build_rules(RulesConfig(enabled=False)) is None
    header = [_scored("E11", 0.9)]  # a non-billable header the rules would replace
    assert [c.code for c in _build(header, build_rules(RulesConfig(enabled=False))).codes] == ["E11"]
    assert [c.code for c in _build(header, build_rules(RulesConfig())).codes] != ["E11"]


def test_rules_are_on_by_default() -> None:
    assert isinstance(build_rules(RulesConfig()), CodingRules)


@pytest.mark.parametrize(
    "content",
    [
        "code,description\n99213,office visit\n",  # wrong columns
        "",  # empty
        "\x00\x01\x02binary",  # not a text table
        "column1,column2,modifier\n20610,20600,7\n",  # bad row
    ],
)
def test_a_broken_ncci_file_is_an_error_when_the_rules_config_is_read(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ncci.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(NcciFileError) as caught:
        RulesConfig.read(ncci_file=path)
    message = str(caught.value)
    assert isinstance(caught.value, MedcodeError)
    assert "\n" not in message and str(path) in message and "NCCI" in message


def test_a_missing_ncci_file_is_an_error_too(tmp_path: Path) -> None:
    with pytest.raises(MedcodeError, match="NCCI edit file not found"):
        RulesConfig.read(ncci_file=tmp_path / "nowhere.txt")


def test_ncci_edits_round_trip_through_a_pack_folder(tmp_path: Path) -> None:
    path = tmp_path / "ncci.csv"
    path.write_text("column1,column2,modifier,effective\n20610,20600,0,20200101\n", encoding="utf-8")
    config = RulesConfig.read(ncci_file=path)
    summary = save_rules(config, tmp_path / "pack")
    path.unlink()  # the pack needs the parsed edits only
    again = load_rules(summary, tmp_path / "pack")
    assert again == config and len(again.ncci_edits) == 1
    assert "ncci" in build_rules(again).rule_names  # type: ignore[union-attr]


@pytest.fixture
def fresh_rules(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings rebuilt from the environment the test sets."""
    reset_settings()
    yield monkeypatch
    monkeypatch.delenv("MEDCODE_NCCI_FILE", raising=False)
    reset_settings()


def test_broken_ncci_file_is_one_line_from_the_cli(
    fresh_rules: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medcode.cli import main

    path = tmp_path / "ncci.csv"
    path.write_text("code,description\n99213,office visit\n", encoding="utf-8")
    fresh_rules.setenv("MEDCODE_NCCI_FILE", str(path))
    note = tmp_path / "note.txt"
    note.write_text("Essential hypertension.", encoding="utf-8")
    code = main(["suggest", str(note), "--model", "builtin"])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and "NCCI edit file" in err, err
