"""NCCI procedure-to-procedure edit files: reading CMS-style tables and applying the edits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.icd10cm import ICD10CM
from medcode.data.types import CodeSuggestion, Document, Encounter
from medcode.model.rules import CodingRules
from medcode.model.rules.ncci import read_ncci_file
from medcode.settings import Settings

CMS_TAB = (
    "CPT codes and descriptions only are copyright American Medical Association.\n"
    "\n"
    "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date *=no data\t"
    "Modifier 0=not allowed 1=allowed 9=not applicable\tPTP Edit Rationale\n"
    "20610\t20600\t\t20100101\t*\t0\tMisuse of column two code with column one code\n"
    "20610\t20605\t\t20100101\t*\t1\tMutually exclusive procedures\n"
    "20610\t76942\t\t20100101\t20250101\t0\tDeleted\n"
    "99213\t36415\t\t20100101\t*\t9\tNot applicable\n"
)


def test_reads_cms_tab_file_with_preamble(tmp_path: Path) -> None:
    path = tmp_path / "ptp.txt"
    path.write_text(CMS_TAB, encoding="utf-8")
    edits = read_ncci_file(path)
    assert [(e.column1, e.column2, e.modifier) for e in edits][:2] == [
        ("20610", "20600", "0"),
        ("20610", "20605", "1"),
    ]
    deleted = edits[2]
    assert deleted.deletion == dt.date(2025, 1, 1)
    assert not deleted.active_on(dt.date(2026, 1, 1))
    assert deleted.active_on(dt.date(2024, 6, 1))


def test_reads_comma_file_with_plain_headers(tmp_path: Path) -> None:
    path = tmp_path / "ptp.csv"
    path.write_text("column1,column2,modifier indicator,effective,deletion\n0213T,64490,0,2026-01-01,\n")
    (edit,) = read_ncci_file(path)
    assert (edit.column1, edit.column2, edit.modifier, edit.effective, edit.deletion) == (
        "0213T",
        "64490",
        "0",
        dt.date(2026, 1, 1),
        None,
    )


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        read_ncci_file(tmp_path / "missing.txt")
    path = tmp_path / "bad.csv"
    path.write_text("code,description\n20610,arthrocentesis\n")
    with pytest.raises(InvalidInputError, match="column1"):
        read_ncci_file(path)
    path.write_text("column1,column2,modifier\n20610,20600,7\n")
    with pytest.raises(InvalidInputError, match="modifier"):
        read_ncci_file(path)


def test_settings_file_is_used_and_edits_apply(
    icd: ICD10CM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ptp.txt"
    path.write_text(CMS_TAB, encoding="utf-8")
    monkeypatch.setenv("MEDCODE_NCCI_FILE", str(path))
    config = Settings().rules
    rules = CodingRules(icd, ncci_edits=config.ncci_edits)
    assert "ncci" in rules.rule_names
    encounter = Encounter(
        encounter_id="n", date="2026-02-01", documents=[Document(document_id="d1", text="x")]
    )
    codes = [
        CodeSuggestion(system="CPT", code=c, confidence=0.8) for c in ("20610", "20600", "76942", "20605")
    ]
    outcome = rules(encounter, [], codes, [])
    assert [c.code for c in outcome.codes] == ["20610", "76942", "20605"]
    assert [c.code for c in outcome.candidates] == ["20600"]
    assert outcome.reasons == ["ncci:20610|20600"]
    assert "ncci:20610:modifier" in outcome.codes[2].warnings


def test_no_file_no_ncci_rule(icd: ICD10CM) -> None:
    assert "ncci" not in CodingRules(icd, use_settings=False).rule_names
