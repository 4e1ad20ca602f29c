from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.codesystems import CodeInfo, CodeSets, canonical_system, normalize_pcs
from medcode.data.errors import UnknownCodeError


def test_icd10cm_is_always_there_without_a_data_folder() -> None:
    sets = CodeSets(None)
    assert sets.lookup("e1122") == CodeInfo(
        "ICD-10-CM",
        "E11.22",
        "Type 2 diabetes mellitus with diabetic chronic kidney disease",
        True,
        depth=3,
        chapter="4",
        parent="E11.2",
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


def test_status_tells_billable_header_missing_seventh_and_placeholder() -> None:
    sets = CodeSets(None)
    assert sets.status("E11.22") == "billable"
    assert sets.status("E11") == "header"
    assert sets.status("S52.521") == "needs_7th"
    assert sets.status("S01.20X", "ICD-10-CM") == "needs_7th"  # placeholder X, 7th character missing
    assert sets.status("S52.521A") == "billable"
    assert sets.status("Q99.99") == "unknown"
    assert sets.billable("E11") is False and sets.billable("Q99.99") is None


def test_pcs_validity_of_full_and_partial_codes(data_root: Path) -> None:
    sets = CodeSets(data_root)
    assert sets.pcs_validity("bw03zzz") == "valid"
    assert sets.pcs_validity("0DTJ") == "partial"
    assert sets.pcs_validity("0DTJ9ZZ") == "invalid"
    assert sets.pcs_validity("E11.22") == "invalid"
    assert sets.status("0DTJ") == "partial" and sets.billable("0DTJ") is False
    assert sets.status("0DTJ9ZZ", "ICD-10-PCS") == "unknown"
    assert CodeSets(None).pcs_validity("0DTJ") == "unchecked"
    assert CodeSets(None).status("0DTJ", "ICD-10-PCS") == "partial"  # never billable, release or not


def test_hierarchy_and_notes_of_an_icd10cm_code() -> None:
    sets = CodeSets(None)
    assert sets.parents("E11.22") == ["E11.2", "E11"]
    assert "E11.22" in sets.children("E11.2")
    assert sets.category("e1122") == "E11"
    notes = [text for _, text in sets.notes("E11.22", "use_additional")]
    assert any("chronic kidney disease" in text for text in notes)
    assert sets.resolve("S01.20X").code == "S01.20"  # type: ignore[union-attr]
    assert sets.seventh_characters("S52.521")["A"].startswith("initial encounter")
    assert sets.parents("nonsense") == [] and sets.notes("nonsense", "excludes1") == []


def test_pcs_rows_add_the_four_character_prefixes(data_root: Path) -> None:
    found = CodeSets(data_root).pcs_rows()
    assert found is not None
    _, rows = found
    codes = [code for code, _ in rows]
    assert "BW03ZZZ" in codes and "BW03" in codes and "0DTJ" in codes
    assert CodeSets(None).pcs_rows() is None


def test_a_custom_icd10cm_release_answers_instead_of_the_packaged_one(tabular_xml: Path) -> None:
    from medcode.data.icd10cm import load_icd10cm_from

    sets = CodeSets(None, icd10cm=load_icd10cm_from(tabular_xml))
    assert sets.status("S03.0") == "needs_7th"
    assert sets.status("S03.0XXD") == "billable"
    assert sets.title("S03.0XXD").endswith("subsequent encounter")
    assert sets.lookup("I10") is None  # the packaged release has it, this one does not
    assert sets.icd10cm.targets("S03") == ["S03.0", "S03.40"]
