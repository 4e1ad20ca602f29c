from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.icd10cm_index import (
    find_index_files,
    load_index,
    natural_phrase,
    pairs,
    read_drug_csv,
    read_index_csv,
    read_index_xml,
    read_neoplasm_csv,
    read_table_xml,
)
from tests.data.conftest import INDEX_CSV

INDEX_XML = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2026</version>
  <letter>
    <title>D</title>
    <mainTerm>
      <title>Diabetes, diabetic <nemod>(mellitus) (sugar)</nemod></title>
      <code>E11.9</code>
      <term level="1">
        <title>type 2</title>
        <code>E11.9</code>
        <term level="2">
          <title>with</title>
          <term level="3">
            <title>chronic kidney disease</title>
            <code>E11.22</code>
          </term>
        </term>
      </term>
    </mainTerm>
    <mainTerm>
      <title>Diabetic</title>
      <see>Diabetes</see>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

NEOPLASM_CSV = """\
RowID,Level,Term,SeeAlso,NonEssModif,MalignantPrimary,MalignantSecondary,CaInSitu,Benign,UncertainBehavior,UnspecifiedBehavior
1,0,"Neoplasm, neoplastic",,,C80.1,C79.9,D09.9,D36.9,D48.9,D49.9
2,1,"abdomen, abdominal",,,C76.2,C79.8-,D09.8,D36.7,D48.7,D49.89
"""

DRUG_CSV = """\
RowID,Letter,Level,Term,SeeAlso,NonEssModif,PoisoningAccidental,PoisoningIntentionalSelfHarm,PoisoningAssault,PoisoningUndetermined,AdverseEffect,Underdosing
1,G,0,Glucagon,,,T38.3X1,T38.3X2,T38.3X3,T38.3X4,T38.3X5,T38.3X6
2,P,0,Propanol,,,T51.3X1,--,--,--,--,--
"""

NEOPLASM_XML = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index><version>2025</version>
  <letter><title>N</title>
    <mainTerm><title>Neoplasm, neoplastic</title><cell col="2">C80.1</cell><cell col="5">D36.9</cell>
      <term level="1"><title>abdomen, abdominal</title><cell col="2">C76.2</cell><cell col="3">C79.8-</cell></term>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_get_their_path_from_lower_levels(tmp_path: Path) -> None:
    terms = read_index_csv(_write(tmp_path, "ICD10CM_2025_Index.csv", INDEX_CSV))
    ckd = next(t for t in terms if t.code == "E11.22")
    assert ckd.path == ("Diabetes, diabetic", "type 2", "with", "chronic kidney disease")
    assert ckd.full_term == "Diabetes, diabetic, type 2, with, chronic kidney disease"
    assert ckd.phrase == "Diabetes type 2 with chronic kidney disease"
    nec = next(t for t in terms if t.code == "E11.29")
    assert nec.phrase == "Diabetes type 2 with kidney complications"
    jaw = next(t for t in terms if t.code == "S03.0-")
    assert jaw.path == ("Jaw", "dislocation") and jaw.code_prefix == "S03.0"
    see = next(t for t in terms if t.path == ("Diabetic",))
    assert see.see == "Diabetes" and see.code is None
    assert terms[0].nonessential == "(mellitus) (sugar)"


def test_pairs_skip_terms_without_code(tmp_path: Path) -> None:
    terms = read_index_csv(_write(tmp_path, "index.csv", INDEX_CSV))
    got = list(pairs(terms))
    assert ("Diabetes type 2 with chronic kidney disease", "E11.22") in got
    assert all(code for _, code in got)
    assert len(got) == 5


def test_level_jump_is_an_error(tmp_path: Path) -> None:
    bad = "RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,A,0,Abc,,,,A00\n2,A,2,deep,,,,A01\n"
    with pytest.raises(InvalidInputError, match=r"index\.csv:3: level 2"):
        read_index_csv(_write(tmp_path, "index.csv", bad))


def test_cms_xml_nesting_gives_the_same_paths(tmp_path: Path) -> None:
    terms = read_index_xml(_write(tmp_path, "icd10cm-index-2026.xml", INDEX_XML))
    ckd = next(t for t in terms if t.code == "E11.22")
    assert ckd.path == ("Diabetes, diabetic", "type 2", "with", "chronic kidney disease")
    assert terms[0].nonessential == "(mellitus) (sugar)"
    assert terms[0].path == ("Diabetes, diabetic",)
    see = next(t for t in terms if t.path == ("Diabetic",))
    assert see.see == "Diabetes"


def test_neoplasm_and_drug_tables_give_phrases(tmp_path: Path) -> None:
    neoplasm = read_neoplasm_csv(_write(tmp_path, "neo.csv", NEOPLASM_CSV))
    assert ("malignant primary neoplasm of abdomen, abdominal", "C76.2") in list(pairs(neoplasm))
    drugs = read_drug_csv(_write(tmp_path, "drugs.csv", DRUG_CSV))
    assert ("poisoning by Glucagon, accidental", "T38.3X1") in list(pairs(drugs))
    assert [t.code for t in drugs if "Propanol" in t.phrase] == ["T51.3X1"]
    from_xml = read_table_xml(_write(tmp_path, "neo.xml", NEOPLASM_XML), "neoplasm")
    assert ("secondary malignant neoplasm of abdomen, abdominal", "C79.8-") in list(pairs(from_xml))
    assert ("benign neoplasm", "D36.9") in list(pairs(from_xml))


def test_natural_phrase_drops_nec() -> None:
    assert natural_phrase(["Aberrant", "artery", "basilar NEC"]) == "Aberrant artery basilar"


def test_load_index_finds_files_under_the_datasets_root(data_root: Path) -> None:
    assert set(find_index_files(data_root)) == {"index"}
    assert len(load_index(data_root)) == 8
    with pytest.raises(DatasetNotFoundError, match="no ICD-10-CM alphabetic index"):
        load_index(data_root / "hcpcs")
