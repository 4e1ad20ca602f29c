"""The history-of data file: generated from the ICD-10-CM index's "History, personal (of)" entries."""

from __future__ import annotations

import json
from pathlib import Path

from medcode.data.icd10cm import ICD10CM
from medcode.data.icd10cm_index import read_index_csv
from medcode.model.rules.history import entry_words, load_entries, main
from medcode.model.rules.resources import load_resource

INDEX_ROWS = [
    (0, "History", "", ""),
    (1, "family", "(of)", ""),
    (2, "asthma", "", "Z82.5"),
    (1, "personal", "(of)", ""),
    (2, "disease or disorder", "(of)", "Z87.898"),
    (3, "digestive system", "", "Z87.19"),
    (4, "peptic ulcer disease", "", "Z87.11"),
    (4, "specified condition NEC", "", "Z87.19"),
    (2, "infection NEC", "", "Z86.19"),
    (3, "urinary", "(recurrent) (tract)", "Z87.440"),
    (2, "pneumonia", "(recurrent)", "Z87.01"),
    (2, "stroke without residual deficits", "", "Z86.73"),
    (2, "urinary", "(recurrent) (tract) infection(s)", "Z87.440"),
    (2, "specified NEC", "", "Z87.898"),
    (2, "unknown thing", "", "Z99.99"),
    (0, "Hypertension", "", "I10"),
]


def _write_index(folder: Path) -> Path:
    path = folder / "ICD10CM_2025_Index.csv"
    lines = ["RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code"]
    for i, (level, term, modifier, code) in enumerate(INDEX_ROWS, start=1):
        lines.append(f'{i},H,{level},"{term}",,,"{modifier}",{code}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_resource_is_generated_from_history_personal_entries(tmp_path: Path, icd: ICD10CM) -> None:
    from medcode.model.rules.history import build_resource

    terms = read_index_csv(_write_index(tmp_path))
    data = build_resource(terms, icd, source="ICD-10-CM Alphabetic Index (ICD10CM_2025_Index.csv)")
    entries = {(e["term"], e["code"]) for e in data["entries"]}
    assert entries == {
        ("peptic ulcer disease", "Z87.11"),  # below "disease or disorder": its own term only
        ("infection NEC / urinary", "Z87.440"),
        ("pneumonia", "Z87.01"),
        ("stroke without residual deficits", "Z86.73"),
        ("urinary infection", "Z87.440"),  # the flattened index's modifier field ends the term
    }
    # left out: family history, body-system groupings, catch-all NEC buckets, codes not in the tabular
    assert data["left_out"] == ["unknown thing -> Z99.99"]
    assert data["fiscal_year"] == "FY2025"


def test_generator_writes_the_file(tmp_path: Path) -> None:
    _write_index(tmp_path)
    out = tmp_path / "history_of.json"
    assert main(["--data-dir", str(tmp_path), "--out", str(out)]) == 0
    assert {e["code"] for e in json.loads(out.read_text())["entries"]} >= {"Z87.01", "Z86.73"}


def test_qualifiers_after_with_or_without_are_kept_apart() -> None:
    required, qualifiers = entry_words("stroke without residual deficits")
    assert required == {"stroke"} and qualifiers == {"residual", "deficit"}
    required, qualifiers = entry_words("surgery NEC / with uterine scar")
    assert required == {"surgery"} and qualifiers == {"uterine", "scar"}


def test_packaged_entries_give_billable_codes(icd: ICD10CM) -> None:
    data = load_resource("history_of.json")
    assert data["fiscal_year"].startswith("FY")
    entries = load_entries()
    assert len(entries) > 200
    for entry in entries:
        found = icd.get(entry.code)
        assert found is not None and found.billable, entry
    terms = {e.term for e in entries}
    assert {"pneumonia", "malignant neoplasm / breast", "stroke without residual deficits"} <= terms
    # catch-alls that would file chronic conditions as history are not there
    assert not any(e.required <= {"respiratory", "type", "system", "infection"} for e in entries)
