"""A tree loaded from its JSON text (as a model pack stores it) decodes a main term on first use, walks as the
tree it was saved from, and writes back the same bytes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from medcode.data.index_walk import NOT, IndexNode, IndexTree, MainTerms
from medcode.model.pack import INDEX_TREE_FILE, load_index_tree
from tests.data.test_index_walk import tree_of, walk, words

DRUG_CSV = """\
RowID,Letter,Level,Term,SeeAlso,NonEssModif,PoisoningAccidental,PoisoningIntentionalSelfHarm,PoisoningAssault,PoisoningUndetermined,AdverseEffect,Underdosing
1,G,0,Glucagon,,,T38.3X1,T38.3X2,T38.3X3,T38.3X4,T38.3X5,T38.3X6
2,P,0,Propanol,,,T51.3X1,--,--,--,--,--
"""

MENTIONS = [
    ("distal radius fx", "styloid process", ""),  # a "see" line followed to its subterm
    ("radius shaft fracture", "", ""),
    ("multiple rib fractures", "", "flail chest"),  # a "with" subterm redirected to another main term
    ("pneumonia", "", "lung abscess on CT"),
    ("lobar pneumonia", "", ""),
    ("pathological fracture of radius", "", ""),
    ("prostate cancer", "", ""),  # the Neoplasm table
    ("cancer", "metastatic to liver", ""),
    ("sprain of ankle ligament", "calcaneofibular", ""),
    ("headache", "", ""),
]


def _dump(tree: IndexTree) -> bytes:
    """The tree's JSON as a model pack writes it (`model.pack._write_json_gz`, uncompressed)."""
    return json.dumps(tree.to_json(), separators=(",", ":")).encode("utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> IndexTree:
    return tree_of(tmp_path_factory.mktemp("index"), drugs=DRUG_CSV)


def _hits(tree: IndexTree, mention: str, sentence: str, encounter: str) -> list[object]:
    own = words(mention)
    modifiers = own | words(sentence)
    return list(tree.walk(own, modifiers, modifiers | words(encounter), words))


def test_loaded_tree_walks_as_the_tree_it_was_saved_from(built: IndexTree) -> None:
    loaded = IndexTree.loads(_dump(built))
    assert loaded.version == built.version and len(loaded) == len(built)
    for mention, sentence, encounter in MENTIONS:
        assert _hits(loaded, mention, sentence, encounter) == _hits(built, mention, sentence, encounter)
    assert walk(loaded, "distal radius fx", "styloid process")[0][-1] == "S52.51-"
    assert walk(loaded, "cancer", "metastatic to liver")[0][-1] == "C78.7"
    absent = frozenset(NOT + w for w in words("loss of consciousness"))
    own = words("concussion")
    assert loaded.walk(own, own | absent, own, words)[0].code == "S06.0X0"


def test_loaded_tree_has_the_tables_of_the_saved_one(built: IndexTree) -> None:
    loaded = IndexTree.loads(_dump(built))
    assert built.neoplasm is not None and loaded.neoplasm is not None
    assert loaded.neoplasm.to_json() == built.neoplasm.to_json()
    assert [d.title for d in loaded.drugs] == ["Glucagon", "Propanol"]
    assert [d.to_json() for d in loaded.drugs] == [d.to_json() for d in built.drugs]


def test_loaded_tree_writes_back_the_bytes_it_was_read_from(built: IndexTree) -> None:
    text = _dump(built)
    for loaded in (IndexTree.loads(text), IndexTree.from_json(json.loads(text))):
        assert _dump(loaded) == text  # nothing decoded
        walk(loaded, "distal radius fx")
        walk(loaded, "prostate cancer")
        assert _dump(loaded) == text  # some main terms and the Neoplasm table decoded
        assert len(list(loaded.mains)) == len(built) and loaded.drugs
        assert _dump(loaded) == text  # all decoded


def test_loading_decodes_no_main_term_and_a_walk_only_those_it_names(built: IndexTree) -> None:
    loaded = IndexTree.loads(_dump(built))
    assert isinstance(loaded.mains, MainTerms)
    assert loaded.mains.decoded() == 0
    assert loaded.mains.titles == [m.title for m in built.mains]
    walk(loaded, "pneumonia")
    assert loaded.mains.decoded() == 1
    walk(loaded, "radius fracture")  # and the three "Fracture, ..." main terms
    assert loaded.mains.decoded() == 4 < len(loaded)


def test_titles_with_quotes_backslashes_and_brackets_are_cut_right() -> None:
    odd = ['Say "ah" [sic]', "back\\slash\\", 'end quote\\"', "caf\u00e9 ]}[{"]
    mains = [IndexNode(t, f"R{n:02d}", children=[IndexNode(f'{t} "sub"', "R99")]) for n, t in enumerate(odd)]
    tree = IndexTree([*mains, IndexNode("Zz", "Z00")], None, [IndexNode("Drug [x]", cells={"A": "T1"})], "v")
    text = _dump(tree)
    loaded = IndexTree.loads(text)
    assert list(loaded.mains.titles) == [*odd, "Zz"]
    assert [m.to_json() for m in loaded.mains] == [m.to_json() for m in tree.mains]
    assert loaded.neoplasm is None and loaded.drugs[0].cells == {"A": "T1"}
    assert _dump(IndexTree.loads(text)) == text


def test_json_of_another_layout_is_read_whole(built: IndexTree) -> None:
    pretty = json.dumps(built.to_json(), indent=1, ensure_ascii=False).encode("utf-8")
    loaded = IndexTree.loads(pretty)
    for mention, sentence, encounter in MENTIONS:
        assert _hits(loaded, mention, sentence, encounter) == _hits(built, mention, sentence, encounter)
    assert _dump(loaded) == _dump(built)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b'{"version":"v","mains":[["A","",',
        b"[1, 2]",
        b'{"mains":[1]}',
        b'{"mains":true,"drugs":[]}',
        b'{"mains":[{"a":1}]}',
    ],
)
def test_text_that_is_no_tree_is_an_error(text: bytes) -> None:
    with pytest.raises((ValueError, TypeError)):
        tree = IndexTree.loads(text)
        tree.to_json()


def test_tree_from_a_pack_folder_is_loaded_lazily(built: IndexTree, tmp_path: Path) -> None:
    (tmp_path / INDEX_TREE_FILE).write_bytes(gzip.compress(_dump(built)))
    loaded = load_index_tree(tmp_path)
    assert loaded is not None and isinstance(loaded.mains, MainTerms) and loaded.mains.decoded() == 0
    assert walk(loaded, "distal radius fx") == walk(built, "distal radius fx")
