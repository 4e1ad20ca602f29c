from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode import cli


def test_suggest_plain_text_prints_result_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Assessment: essential hypertension. No chest pain.\n")
    assert cli.main(["suggest", str(note), "--model", "builtin"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["encounter_id"] == "e1"
    assert result["code_set_version"] == "ICD-10-CM 2026"
    codes = [c["code"] for c in result["codes"]]
    assert "I10" in codes
    assert not any(c.startswith("R07") for c in codes)
    assert result["routing"]["decision"] == "review"
    ev = result["codes"][0]["evidence"][0]
    assert note.read_text()[ev["start"] : ev["end"]] == ev["text"]


def test_suggest_reads_encounter_json_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    encounter = {
        "encounter_id": "enc-7",
        "patient": {"age": 67, "sex": "female"},
        "documents": [{"document_id": "n1", "text": "Hypothyroidism."}],
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(encounter)))
    assert cli.main(["suggest", "-", "--model", "builtin", "--compact"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert result["encounter_id"] == "enc-7"
    assert result["codes"][0]["evidence"][0]["document_id"] == "n1"


def test_suggest_invalid_json_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"encounter_id": "x", "documents": []}')
    assert cli.main(["suggest", str(bad), "--model", "builtin"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medcode: error: input: invalid encounter: documents")
    assert "\n" not in err


def test_suggest_missing_file_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["suggest", "/no/such/note.txt", "--model", "builtin"]) == 2
    assert "not found" in capsys.readouterr().err


def test_unknown_model_reference_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Fever.")
    assert cli.main(["suggest", str(note), "--model", "nonsense-ref"]) == 2
    assert "unknown model reference" in capsys.readouterr().err
