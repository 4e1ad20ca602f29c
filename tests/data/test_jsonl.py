from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode.data.corpora import load_corpus
from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.jsonl import read_jsonl, write_jsonl
from medcode.data.types import Document, Encounter, Gold, Patient


def _encounter(eid: str) -> Encounter:
    return Encounter(
        encounter_id=eid,
        patient=Patient(age=67, sex="female"),
        setting="outpatient",
        documents=[Document(document_id="d1", type="discharge_summary", text="Type 2 DM with CKD stage 3.")],
        gold=Gold(diagnosis=["E11.22", "N18.30"], procedure=[]),
    )


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    encounters = [_encounter("e1"), _encounter("e2").model_copy(update={"gold": None})]
    path = tmp_path / "train.jsonl"
    assert write_jsonl(encounters, path) == 2
    assert read_jsonl(path) == encounters
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    line = _encounter("e1").model_dump_json()
    path.write_text(f"\n{line}\n\n", encoding="utf-8")
    assert [e.encounter_id for e in read_jsonl(path)] == ["e1"]


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(_encounter("e1").model_dump_json() + "\n{not json\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_invalid_encounter_names_the_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"encounter_id": "e1", "documents": []}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl:1: invalid encounter: documents"):
        read_jsonl(path)


def test_non_object_line_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="expected a JSON object"):
        read_jsonl(path)


def test_repeated_encounter_id_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    write_jsonl([_encounter("e1"), _encounter("e1")], path)
    with pytest.raises(InvalidInputError, match=r"dup\.jsonl:2: encounter_id 'e1' repeats line 1"):
        read_jsonl(path)


def test_load_corpus_reads_split_file_or_direct_path(tmp_path: Path) -> None:
    write_jsonl([_encounter("e1")], tmp_path / "test.jsonl")
    assert load_corpus("jsonl", tmp_path, "test")[0].gold == Gold(diagnosis=["E11.22", "N18.30"])
    assert len(load_corpus("jsonl", tmp_path / "test.jsonl", "ignored")) == 1
    with pytest.raises(DatasetNotFoundError, match=r"'dev' not found.*splits present: test"):
        load_corpus("jsonl", tmp_path, "dev")
