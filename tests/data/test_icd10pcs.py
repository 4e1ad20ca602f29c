from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.errors import DatasetNotFoundError, InvalidInputError, UnknownCodeError
from medcode.data.icd10pcs import load_icd10pcs, normalize_pcs, read_pcs_codes


def test_normalize_pcs_upper_without_dots() -> None:
    assert normalize_pcs("bw03zzz") == "BW03ZZZ"
    assert normalize_pcs(" 0dt.j4zz ") == "0DTJ4ZZ"
    assert normalize_pcs("bw03") == "BW03"


def test_code_list_and_tables_give_titles(data_root: Path) -> None:
    pcs = load_icd10pcs(data_root)
    assert pcs.version == "ICD-10-PCS 2024"
    assert len(pcs) == 3
    assert pcs["bw03zzz"].title == "Plain Radiography of Chest"
    assert pcs["BW03ZZZ"].billable
    partial = pcs["0DTJ"]
    assert not partial.billable
    assert partial.title == "Medical and Surgical, Gastrointestinal System, Resection, Appendix"
    assert pcs.tables is not None
    labels = [a.label for a in pcs.tables.axes("0DTJ4ZZ")]
    assert labels[4:] == ["Percutaneous Endoscopic", "No Device", "No Qualifier"]
    assert pcs.tables.definitions["0DT"] == "Cutting out all of a body part"


def test_partial_codes_are_known_only_as_prefixes(data_root: Path) -> None:
    pcs = load_icd10pcs(data_root, with_tables=False)
    assert pcs.is_known("0DTJ") and pcs.is_known("BW03ZZZ")
    assert not pcs.is_known("0DTK") and not pcs.is_known("ZZ99ZZZ")
    assert pcs.codes_with_prefix("0DTJ") == ["0DTJ0ZZ", "0DTJ4ZZ"]
    assert pcs.title("0DTJ") == ""  # no tables loaded: known, but without a title
    assert "0dt.j4zz" in pcs and "0DTJ" not in pcs  # members are the full codes only
    assert sorted(pcs) == ["0DTJ0ZZ", "0DTJ4ZZ", "BW03ZZZ"]
    with pytest.raises(UnknownCodeError, match="unknown ICD-10-PCS code: ZZ99ZZZ"):
        pcs["ZZ99ZZZ"]


def test_bad_code_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "icd10pcs-codes-2024.txt"
    path.write_text("BW03ZZZ Plain Radiography of Chest\nBW03 short\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"codes-2024\.txt:2"):
        read_pcs_codes(path)


def test_missing_code_list_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no ICD-10-PCS code list"):
        load_icd10pcs(tmp_path)
