from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.model.text import TextPipeline
from medcode.model.text import sources as sources_module

DESIGN_KEYS = ["start", "end", "text", "type", "section", "assertion"]
FLAGS = {"negated", "possible", "historical", "family", "hypothetical"}


@pytest.fixture(autouse=True)
def _small(monkeypatch: pytest.MonkeyPatch, small_pipeline: TextPipeline) -> None:
    monkeypatch.setattr(sources_module, "get_pipeline", lambda *_args: small_pipeline)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["extract", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_extract_plain_text_prints_the_design_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    text = "HPI: 67 yo with HTN presents with chest pain. No fever.\n"
    note.write_text(text, encoding="utf-8")
    code, out, _ = run(capsys, str(note))
    assert code == 0
    mentions = json.loads(out)["mentions"]
    assert [m["text"] for m in mentions] == ["HTN", "chest pain", "fever"]
    for mention in mentions:
        assert list(mention)[: len(DESIGN_KEYS)] == DESIGN_KEYS
        assert set(mention["assertion"]) == FLAGS
        assert text[mention["start"] : mention["end"]] == mention["text"]
    assert mentions[1]["section"] == "hpi" and mentions[1]["type"] == "sign_symptom"
    assert mentions[2]["assertion"]["negated"] is True


def test_extract_encounter_json_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    encounter = {
        "encounter_id": "e1",
        "documents": [
            {"document_id": "n1", "text": "Denies chest pain."},
            {"document_id": "n2", "text": "Mother had breast cancer."},
        ],
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(encounter)))
    code, out, _ = run(capsys, "-", "--compact")
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    mentions = json.loads(out)["mentions"]
    assert [(m["document_id"], m["text"]) for m in mentions] == [
        ("n1", "chest pain"),
        ("n2", "breast cancer"),
    ]
    assert mentions[1]["assertion"]["family"] is True


def test_present_only_drops_negated_mentions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text("No fever. Cough.", encoding="utf-8")
    _, out, _ = run(capsys, str(note), "--present-only")
    assert [m["text"] for m in json.loads(out)["mentions"]] == ["Cough"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("{not json", "not valid JSON"),
        ('{"encounter_id": "e1"}', "invalid encounter: documents"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "in.txt"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, str(path))
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_missing_file_and_binary_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope.txt"))
    assert code != 0 and "no such file" in err
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\xff\xfe\x00bad")
    code, _, err = run(capsys, str(binary))
    assert code != 0 and "not UTF-8" in err


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["extract", "--help"])
    assert exc.value.code == 0
    assert "PATH|-" in capsys.readouterr().out
