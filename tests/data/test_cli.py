from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode.cli import main

pytestmark = pytest.mark.usefixtures("isolated_data_env")


def test_codes_show_prints_title_parents_and_notes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codes", "show", "e1122"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "E11.22  Type 2 diabetes mellitus with diabetic chronic kidney disease"
    assert "parent:    E11.2  Type 2 diabetes mellitus with kidney complications" in out
    assert "billable:  yes" in out
    assert "E08-E13" in out and "N18.1-N18.6" in out


def test_codes_show_seventh_character_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codes", "show", "S52.521A", "--format", "json"]) == 0
    details = json.loads(capsys.readouterr().out)
    assert details["title"].startswith("Torus fracture of lower end of right radius, initial encounter")
    assert details["billable"] is True
    assert [p["code"] for p in details["parents"]] == ["S52.521", "S52.52", "S52.5", "S52"]


def test_codes_show_unknown_code_is_one_line_and_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codes", "show", "X99.99"]) != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == ["medcode: error: unknown ICD-10-CM code: X99.99"]


def test_codes_show_pcs_and_hcpcs_from_the_data_folder(
    data_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from medcode.settings import reset_settings

    monkeypatch.setenv("MEDCODE_DATA_DIR", str(data_root))
    reset_settings()
    assert main(["codes", "show", "bw03zzz"]) == 0
    assert capsys.readouterr().out.startswith("BW03ZZZ  Plain Radiography of Chest")
    assert main(["codes", "show", "J1611"]) == 0
    assert "HCPCS" in capsys.readouterr().out
    assert main(["codes", "show", "99213"]) == 0
    assert "established patient, MDM low" in capsys.readouterr().out


def test_codes_search_lists_e1122_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["codes", "search", "type 2 diabetes with diabetic chronic kidney disease", "--limit", "3"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("E11.22 ")


def test_codes_search_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codes", "search", "acute", "appendicitis", "--format", "json", "--system", "icd10cm"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["query"] == "acute appendicitis"
    assert payload["hits"][0]["code"].startswith("K35")
    assert set(payload["hits"][0]) == {"code", "system", "title", "score", "matched_term"}


def test_data_check_reports_codiesp_counts(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", "--data-dir", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "codiesp train: 2 documents" in out
    assert "1 not in ICD-10-CM" in out
    assert "hcpcs: HCPCS Oct 2025, 3 codes" in out
    assert main(["data", "check", "--data-dir", str(data_root), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["datasets"]["codiesp"]["train"]["documents"] == 2


def test_data_check_without_a_folder_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check"]) == 2
    assert "set MEDCODE_DATA_DIR or pass --data-dir" in capsys.readouterr().err


@pytest.mark.shared
def test_data_check_on_shared_datasets(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "codiesp train: 500 documents" in out
    assert "codiesp dev: 250 documents" in out
