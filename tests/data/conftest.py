"""Tiny data files written by the tests: a tabular XML, a CodiEsp folder, index, PCS, HCPCS, CPT, DO."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.settings import reset_settings

TABULAR_XML = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>2026</version>
  <chapter>
    <name>4</name>
    <desc>Endocrine, nutritional and metabolic diseases (E00-E89)</desc>
    <excludes1><note>transitory endocrine disorders specific to newborn (P70-P74)</note></excludes1>
    <section id="E08-E13">
      <desc>Diabetes mellitus (E08-E13)</desc>
      <diag>
        <name>E11</name>
        <desc>Type 2 diabetes mellitus</desc>
        <inclusionTerm><note>diabetes NOS</note></inclusionTerm>
        <excludes1>
          <note>type 1 diabetes mellitus (E10.-)</note>
          <note>gestational diabetes (O24.4-)</note>
        </excludes1>
        <useAdditionalCode><note>code to identify control using insulin (Z79.4)</note></useAdditionalCode>
        <diag>
          <name>E11.2</name>
          <desc>Type 2 diabetes mellitus with kidney complications</desc>
          <diag>
            <name>E11.22</name>
            <desc>Type 2 diabetes mellitus with diabetic chronic kidney disease</desc>
            <useAdditionalCode>
              <note>code to identify stage of chronic kidney disease (N18.1-N18.6)</note>
            </useAdditionalCode>
            <excludes2><note>hypertensive chronic kidney disease with stage 5 (I12.0)</note></excludes2>
          </diag>
        </diag>
        <diag>
          <name>E11.9</name>
          <desc>Type 2 diabetes mellitus without complications</desc>
        </diag>
      </diag>
    </section>
  </chapter>
  <chapter>
    <name>19</name>
    <desc>Injury, poisoning and certain other consequences of external causes (S00-T88)</desc>
    <section id="S00-S09">
      <desc>Injuries to the head (S00-S09)</desc>
      <diag>
        <name>S03</name>
        <desc>Dislocation and sprain of joints and ligaments of head</desc>
        <codeAlso><note>any associated open wound</note></codeAlso>
        <sevenChrNote><note>The appropriate 7th character is to be added to each code from category S03</note></sevenChrNote>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
          <extension char="D">subsequent encounter</extension>
          <extension char="S">sequela</extension>
        </sevenChrDef>
        <diag>
          <name>S03.0</name>
          <desc>Dislocation of jaw</desc>
        </diag>
        <diag>
          <name>S03.4</name>
          <desc>Sprain of jaw</desc>
          <diag>
            <name>S03.40</name>
            <desc>Sprain of jaw, unspecified side</desc>
            <sevenChrDef>
              <extension char="A">first visit</extension>
            </sevenChrDef>
          </diag>
        </diag>
      </diag>
      <diag>
        <name>S06</name>
        <desc>Intracranial injury</desc>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
          <extension char="D">subsequent encounter</extension>
        </sevenChrDef>
        <diag>
          <name>S06.1X7</name>
          <desc>Traumatic cerebral edema with death due to brain injury</desc>
        </diag>
        <diag>
          <name>S06.1X1</name>
          <desc>Traumatic cerebral edema with short loss of consciousness</desc>
        </diag>
      </diag>
    </section>
  </chapter>
</ICD10CM.tabular>
"""

PCS_CODES = """\
BW03ZZZ Plain Radiography of Chest
0DTJ4ZZ Resection of Appendix, Percutaneous Endoscopic Approach
0DTJ0ZZ Resection of Appendix, Open Approach
"""

PCS_TABLES = """<?xml version="1.0" encoding="utf-8"?>
<ICD10PCS.tabular>
  <version>2021</version>
  <pcsTable>
    <axis pos="1" values="1"><title>Section</title><label code="0">Medical and Surgical</label></axis>
    <axis pos="2" values="1"><title>Body System</title><label code="D">Gastrointestinal System</label></axis>
    <axis pos="3" values="1"><title>Operation</title><label code="T">Resection</label>
      <definition>Cutting out all of a body part</definition></axis>
    <pcsRow codes="2">
      <axis pos="4" values="1"><title>Body Part</title><label code="J">Appendix</label></axis>
      <axis pos="5" values="2"><title>Approach</title><label code="0">Open</label>
        <label code="4">Percutaneous Endoscopic</label></axis>
      <axis pos="6" values="1"><title>Device</title><label code="Z">No Device</label></axis>
      <axis pos="7" values="1"><title>Qualifier</title><label code="Z">No Qualifier</label></axis>
    </pcsRow>
  </pcsTable>
</ICD10PCS.tabular>
"""

HCPCS_TSV = """\
code\tkind\tlong_description\tshort_description
J1611\tprocedure\tInjection, glucagon hydrochloride, per 1 mg\tInj glucagon hcl
A0425\tprocedure\tGround mileage, per statute mile\tGround mileage
GT\tmodifier\tVia interactive audio and video telecommunication systems\tInteractive telecommunication
"""

INDEX_CSV = """\
RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code
1,D,0,"Diabetes, diabetic",,,(mellitus) (sugar),E11.9
2,D,1,type 2,,,,E11.9
3,D,2,with,,,,
4,D,3,chronic kidney disease,,,,E11.22
5,D,3,kidney complications NEC,,,,E11.29
6,D,0,Diabetic,Diabetes,,,
7,J,0,Jaw,,,,
8,J,1,dislocation,,,,S03.0-
"""

DO_UNION = """\
doid\tname\tsynonym\tsynonym_scope\ticd10cm_xrefs
DOID:9352\ttype 2 diabetes mellitus\t\tNAME\tE11
DOID:9352\ttype 2 diabetes mellitus\tadult-onset diabetes\tEXACT\tE11
DOID:9352\ttype 2 diabetes mellitus\tsugar disease\tRELATED\tE11
DOID:1\tno xref disease\t\tNAME\t
"""

DO_XREFS = """\
id\tlabel\txrefs
"DOID:1"\t"no xref disease"\t"ICD10CM:E11.9, ICD10CM:E11.22"
"DOID:2"\t"only in xrefs"\t"ICD10CM:S03.0"
"""


@pytest.fixture
def tabular_xml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-tabular-2026.xml"
    path.write_text(TABULAR_XML, encoding="utf-8")
    return path


def write_codiesp(root: Path) -> Path:
    """A two-document CodiEsp train split (+ PCS list beside it); returns the codiesp folder."""
    folder = root / "codiesp" / "train"
    (folder / "text_files_en").mkdir(parents=True)
    (folder / "text_files").mkdir()
    (folder / "text_files_en" / "doc-1.txt").write_text(
        "A 60-year-old man with type 2 diabetes.\nChest X-ray was normal.\n", encoding="utf-8"
    )
    (folder / "text_files_en" / "doc-2.txt").write_text("No complaints.\n", encoding="utf-8")
    (folder / "text_files" / "doc-1.txt").write_text(
        "Varón de 60 años con diabetes tipo 2.", encoding="utf-8"
    )
    (folder / "trainD.tsv").write_text(
        "doc-1\te11.22\ndoc-1\te11.22\ndoc-1\tx99.9zz\ndoc-2\te11.9\nghost\tn44.8\n", encoding="utf-8"
    )
    (folder / "trainP.tsv").write_text("doc-1\tbw03zzz\ndoc-1\t0dtj\ndoc-1\tzz99zzz\n", encoding="utf-8")
    (folder / "trainX.tsv").write_text(
        "doc-1\tDIAGNOSTICO\te11.22\tdiabetes tipo 2\t21 36\n"
        "doc-1\tPROCEDIMIENTO\tbw03zzz\tRx tórax\t2 5;8 10\n",
        encoding="utf-8",
    )
    pcs = root / "icd10pcs"
    pcs.mkdir(exist_ok=True)
    (pcs / "icd10pcs-codes-2024.txt").write_text(PCS_CODES, encoding="utf-8")
    return root / "codiesp"


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A complete tiny datasets folder: CodiEsp, index, PCS (+ tables), HCPCS, Disease Ontology."""
    root = tmp_path / "datasets"
    root.mkdir()
    write_codiesp(root)
    (root / "icd10pcs" / "icd10pcs_tables_2021.xml").write_text(PCS_TABLES, encoding="utf-8")
    (root / "hcpcs").mkdir()
    (root / "hcpcs" / "hcpcs_2025_oct_codes.tsv").write_text(HCPCS_TSV, encoding="utf-8")
    index = root / "icd10cm" / "fy2025_index"
    index.mkdir(parents=True)
    (index / "ICD10CM_2025_Index.csv").write_text(INDEX_CSV, encoding="utf-8")
    (root / "disease-ontology").mkdir()
    (root / "disease-ontology" / "do_subsets_union_terms.tsv").write_text(DO_UNION, encoding="utf-8")
    (root / "disease-ontology" / "ICD10inDO.tsv").write_text(DO_XREFS, encoding="utf-8")
    return root


@pytest.fixture
def isolated_data_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MEDCODE_DATA_DIR / MEDCODE_CPT_FILE, and fresh code-set and search caches."""
    from medcode.data import codesystems, search

    monkeypatch.delenv("MEDCODE_DATA_DIR", raising=False)
    monkeypatch.delenv("MEDCODE_CPT_FILE", raising=False)
    reset_settings()
    codesystems._cached_code_sets.cache_clear()
    search.get_code_search.cache_clear()
    yield
    reset_settings()
    codesystems._cached_code_sets.cache_clear()
    search.get_code_search.cache_clear()
