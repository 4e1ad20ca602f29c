"""The Alphabetic Index as a tree, walked like a coder: a tiny index written by the test in the format of
the CMS files (the flattened CSV of the main index and the neoplasm table, and the index XML)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medcode.data.icd10cm_index import load_index, read_index_xml
from medcode.data.index_walk import NOT, IndexTree, build_tree

INDEX_CSV = """RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code
1,C,0,Cancer,,"Neoplasm, by site, malignant",,
1,C,0,Concussion,,,(brain) (cerebral),S06.0X9
1,C,1,with,,,,
1,C,2,loss of consciousness,,,,
1,C,3,brief,,,,S06.0X1
1,C,2,no loss of consciousness,,,,S06.0X0
2,F,0,"Fracture, burst","Fracture, traumatic, by site",,,
3,F,0,"Fracture, pathological",,"Fracture, traumatic",(pathologic),M84.40
4,F,1,radius,,,,M84.43-
5,F,0,"Fracture, traumatic",,"Fracture, pathological",(abduction) (adduction) (separation),T14.8
6,F,1,radius,,,,S52.9-
7,F,2,distal end,"Fracture, radius, lower end",,,
8,F,2,lower end,,,,S52.50-
9,F,3,styloid process,,,(displaced),S52.51-
10,F,3,specified NEC,,,,S52.59-
11,F,2,shaft,,,,S52.30-
12,F,1,rib,,,,S22.3-
13,F,2,multiple,,,,S22.4-
14,F,2,with flail chest,"Flail, chest",,,
15,F,0,Flail,,,,
16,F,1,chest,,,,S22.5-
17,P,0,Pneumonia,,,(acute) (double),J18.9
18,P,1,with,,,,
19,P,2,lung abscess,,,,J85.1
20,P,1,aspiration,,,,J69.0
21,P,1,lobar,,,(disseminated),J18.1
22,S,0,Sprain,,,,T14.8
23,S,1,ankle,,,,S93.40-
24,S,2,calcaneofibular ligament,,,,S93.41-
"""

NEOPLASM_CSV = """RowID,Level,Term,SeeAlso,NonEssModif,MalignantPrimary,MalignantSecondary,CaInSitu,Benign,UncertainBehavior,UnspecifiedBehavior
1,0,"Neoplasm, neoplastic",,,C80.1,C79.9,D09.9,D36.9,D48.9,D49.9
2,1,liver,,,C22.9,C78.7,D01.5,D13.4,D37.6,D49.0
3,1,prostate,,(gland),C61,C79.82,D07.5,D29.1,D40.0,D49.59
"""

INDEX_XML = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2026</version>
  <letter><title>P</title>
    <mainTerm><title>Pneumonia <nemod>(acute) (double)</nemod></title><code>J18.9</code>
      <term level="1"><title>with</title>
        <term level="2"><title>lung abscess</title><code>J85.1</code></term>
      </term>
      <term level="1"><title>lobar</title><nemod>(disseminated)</nemod><code>J18.1</code></term>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

_STOP = frozenset({"of", "the", "a", "for", "with", "and", "to", "in", "no", "fx"})


def words(text: str) -> frozenset[str]:
    """A plain normaliser for the tests (the model passes the rules' one): lower case, "fx" named."""
    lowered = re.sub(r"\bfx\b", "fracture", text.lower())
    return frozenset(w.rstrip("s") if len(w) > 4 else w for w in re.findall(r"[a-z0-9]+", lowered)) - _STOP


def tree_of(root: Path, drugs: str | None = None) -> IndexTree:
    """The tree built from this module's index and neoplasm CSVs (and a drug table's, when given) written as
    the FY2025 index folder under `root`."""
    folder = root / "icd10cm" / "fy2025_index"
    folder.mkdir(parents=True)
    (folder / "ICD10CM_2025_Index.csv").write_text(INDEX_CSV)
    (folder / "ICD10CM_2025_neoplasms.csv").write_text(NEOPLASM_CSV)
    if drugs is not None:
        (folder / "ICD10CM_2025_Drugs.csv").write_text(drugs)
    kinds = ("index", "neoplasm", "drug") if drugs is not None else ("index", "neoplasm")
    return build_tree(load_index(root, kinds), "test")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> IndexTree:
    return tree_of(tmp_path_factory.mktemp("index"))


def walk(tree: IndexTree, mention: str, sentence: str = "", encounter: str = "") -> list[tuple[str, ...]]:
    own = words(mention)
    modifiers = own | words(sentence)
    hits = tree.walk(own, modifiers, modifiers | words(encounter), words)
    return [(*h.path, h.code) for h in hits]


def test_walk_takes_the_deepest_subterm_the_note_supports(tree: IndexTree) -> None:
    assert walk(tree, "distal radius fx", "styloid process")[0][-1] == "S52.51-"
    assert walk(tree, "radius shaft fracture")[0] == ("Fracture, traumatic", "radius", "shaft", "S52.30-")


def test_see_redirect_is_followed_to_its_subterm(tree: IndexTree) -> None:
    hits = tree.walk(words("distal radius fx"), words("distal radius fx"), frozenset(), words)
    assert hits[0].code == "S52.50-"
    assert hits[0].path == ("Fracture, traumatic", "radius", "lower end")
    assert hits[0].redirects == ("Fracture, radius, lower end",)
    assert hits[0].incomplete and hits[0].code_prefix == "S52.50"


def test_main_term_gives_its_default_code_when_no_subterm_applies(tree: IndexTree) -> None:
    assert walk(tree, "pneumonia")[0] == ("Pneumonia", "J18.9")
    assert walk(tree, "fracture")[0] == ("Fracture, traumatic", "T14.8")


def test_nonessential_modifiers_are_not_required(tree: IndexTree) -> None:
    # "lobar (disseminated)": "lobar" alone reaches J18.1
    assert walk(tree, "lobar pneumonia")[0][-1] == "J18.1"


def test_with_subterm_applies_when_the_other_condition_is_documented_in_the_encounter(
    tree: IndexTree,
) -> None:
    assert walk(tree, "pneumonia", "", "lung abscess on CT")[0] == ("Pneumonia", "with lung abscess", "J85.1")
    assert walk(tree, "pneumonia", "", "no other finding")[0][-1] == "J18.9"


def test_with_subterm_redirect_reaches_the_other_main_term(tree: IndexTree) -> None:
    assert walk(tree, "multiple rib fractures", "", "flail chest")[0][-1] == "S22.5-"


def test_no_subterm_applies_only_to_what_the_note_documents_absent(tree: IndexTree) -> None:
    own = words("concussion")
    absent = frozenset(NOT + w for w in words("loss of consciousness"))
    assert tree.walk(own, own | absent, own, words)[0].code == "S06.0X0"
    # said present (a brief loss of consciousness), the "with" subterm applies instead
    said = own | words("brief loss of consciousness")
    assert tree.walk(own, said, said, words)[0].code == "S06.0X1"
    assert tree.walk(own, own, own, words)[0].code == "S06.0X9"


def test_qualified_main_term_wins_only_when_documented(tree: IndexTree) -> None:
    assert walk(tree, "pathological fracture of radius")[0][-1] == "M84.43-"
    assert walk(tree, "radius fracture")[0][-1] == "S52.9-"


def test_neoplasm_table_is_walked_by_site_with_the_behaviour_column(tree: IndexTree) -> None:
    assert walk(tree, "prostate cancer")[0][-1] == "C61"
    assert walk(tree, "cancer", "metastatic to liver")[0][-1] == "C78.7"


def test_unknown_main_term_gives_nothing(tree: IndexTree) -> None:
    assert walk(tree, "headache") == []


def test_tree_round_trips_through_json(tree: IndexTree) -> None:
    copy = IndexTree.from_json(json.loads(json.dumps(tree.to_json())))
    for mention in ("distal radius fx", "prostate cancer", "pneumonia", "sprain of ankle ligament"):
        assert walk(copy, mention, "", "lung abscess") == walk(tree, mention, "", "lung abscess")


def test_index_xml_gives_the_same_walk(tmp_path: Path) -> None:
    file = tmp_path / "icd10cm-index-2026.xml"
    file.write_text(INDEX_XML)
    tree = build_tree(read_index_xml(file), "xml")
    assert walk(tree, "pneumonia", "", "lung abscess")[0][-1] == "J85.1"
    assert walk(tree, "lobar pneumonia")[0][-1] == "J18.1"
