from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.codesystems import CodeInfo, CodeSets, canonical_system, normalize_pcs
from medcode.data.errors import UnknownCodeError


def test_icd10cm_is_always_there_without_a_data_folder() -> None:
    sets = CodeSets(None)
    assert sets.lookup("e1122") == CodeInfo(
        "ICD-10-CM", "E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease", True
    )
    assert sets.icd10pcs is None and sets.hcpcs is None
    assert sets.lookup("BW03ZZZ") is None
    assert set(sets.available()) == {"ICD-10-CM", "CPT"}


def test_lookup_guesses_the_system_from_the_code(data_root: Path) -> None:
    sets = CodeSets(data_root)
    assert sets.lookup("bw03zzz").system == "ICD-10-PCS"  # type: ignore[union-attr]
    assert sets.lookup("J1611").system == "HCPCS"  # type: ignore[union-attr]
    assert sets.lookup("99213").system == "CPT"  # type: ignore[union-attr]
    assert sets.lookup("T15.00XA").billable  # type: ignore[union-attr]
    assert sets.lookup("0DTJ").billable is False  # type: ignore[union-attr]
    assert sets.lookup("nonsense") is None


def test_lookup_in_one_system(data_root: Path) -> None:
    sets = CodeSets(data_root)
    assert sets.lookup("E11.22", "icd10pcs") is None
    assert sets.lookup("J1611", system="hcpcs").title.startswith("Injection")  # type: ignore[union-attr]
    with pytest.raises(UnknownCodeError, match="unknown HCPCS code: J9999"):
        sets.require("J9999", "HCPCS")


def test_cpt_file_adds_licensed_codes(tmp_path: Path) -> None:
    path = tmp_path / "cpt.csv"
    path.write_text("code,descriptor\n10060,Drainage of abscess\n")
    sets = CodeSets(None, cpt_file=path)
    assert sets.lookup("10060") == CodeInfo("CPT", "10060", "Drainage of abscess", True)


def test_canonical_system_names() -> None:
    assert canonical_system("icd10cm") == "ICD-10-CM"
    assert canonical_system("PCS") == "ICD-10-PCS"
    with pytest.raises(ValueError, match="unknown code system"):
        canonical_system("snomed")
    assert normalize_pcs("bw03zzz") == "BW03ZZZ"
