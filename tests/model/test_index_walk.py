"""The index walk as a candidate source: codes verified and completed in the packaged tabular, the 7th
character from the encounter, negated mentions never coded, the tree carried by the pack, and old ranker
packs still loading. The index is a tiny one written by the test in the CMS CSV format."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.index_walk import IndexTree
from medcode.data.types import Assertion, Mention
from medcode.model.builtin import BuiltinCoder, BuiltinConfig
from medcode.model.candidates.index_walk import IndexWalker, side_words, split_absent
from medcode.model.catalog import Knowledge
from medcode.model.pack import INDEX_TREE_FILE, load_pack, read_manifest
from medcode.model.trained.features import FEATURES, pack_columns
from tests.model.index_csv import suggested_codes, tree_from_csv

INDEX_CSV = """RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code
1,F,0,"Fracture, pathological",,"Fracture, traumatic",(pathologic),M84.40
2,F,1,radius,,,,M84.43-
3,F,0,"Fracture, traumatic",,"Fracture, pathological",(abduction) (adduction),T14.8
4,F,1,radius,,,,S52.9-
5,F,2,distal end,"Fracture, radius, lower end",,,
6,F,2,lower end,,,,S52.50-
7,F,1,rib,,,,S22.3-
8,F,2,multiple,,,,S22.4-
9,L,0,Laceration,,,,
10,L,1,forearm,,,,S51.819
11,L,2,with,,,,
12,L,3,foreign body,,,,S51.829
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> IndexTree:
    return tree_from_csv(tmp_path_factory.mktemp("index"), INDEX_CSV)


@pytest.fixture(scope="module")
def coder(tree: IndexTree) -> BuiltinCoder:
    return BuiltinCoder(Knowledge(index_tree=tree))


def _mention(text: str, negated: bool = False) -> Mention:
    return Mention(
        document_id="d1",
        start=0,
        end=len(text),
        text=text,
        type="injury",
        assertion=Assertion(negated=negated),
    )


def _codes(coder: BuiltinCoder, text: str, setting: str = "outpatient") -> list[str]:
    return suggested_codes(coder, text, setting=setting, sex="female")


def test_walk_code_is_completed_in_the_tabular_with_the_documented_side(tree: IndexTree) -> None:
    walker = IndexWalker(tree)
    sentence = "F/u visit for R distal radius fx."
    found = walker.walk_mentions([_mention("R distal radius fx")], [sentence])
    assert [(w.code, w.walk.code) for w in found] == [("S52.501", "S52.50-")]
    assert found[0].walk.redirects == ("Fracture, radius, lower end",)


def test_billable_code_of_an_unspecified_side_takes_the_documented_side(tree: IndexTree) -> None:
    walker = IndexWalker(tree)
    found = walker.walk_mentions([_mention("laceration of L forearm")], ["laceration of L forearm"])
    assert [w.code for w in found] == ["S51.812"]
    found = walker.walk_mentions([_mention("laceration of forearm")], ["laceration of forearm"])
    assert [w.code for w in found] == ["S51.819"]


def test_absent_words_are_split_from_what_the_note_says() -> None:
    said, absent = split_absent("concussion without LOC, headache")
    assert "loc" not in said.lower() and "headache" in said
    assert absent == {"not:loss", "not:consciousness"}


def test_short_side_words_are_read_before_a_body_part() -> None:
    assert side_words("R distal radius fx") == {"right", "unilateral"}
    assert side_words("L forearm and R knee") == {"right", "left", "bilateral", "unilateral"}
    assert side_words("Vitamin D level") == frozenset()


def test_subsequent_encounter_gets_the_7th_character_d(coder: BuiltinCoder) -> None:
    assert "S52.501D" in _codes(coder, "F/u visit for R distal radius fx, routine healing. Cast check.")


def test_initial_encounter_gets_the_7th_character_a_after_placeholder_x(coder: BuiltinCoder) -> None:
    # S22.32 (fracture of one rib, left side) is five characters: X fills the sixth
    assert "S22.32XA" in _codes(coder, "Fracture of left rib after a fall, initial encounter.")


def test_negated_mention_yields_no_walk_code(coder: BuiltinCoder) -> None:
    said = _codes(
        coder, "Wrist pain after a fall, initial encounter. Fracture of the distal radius on x-ray."
    )
    assert [c for c in said if c.startswith("S52.50")]  # the same words, present, are walked and coded
    codes = _codes(
        coder, "Wrist pain after a fall, initial encounter. No fracture of the distal radius on x-ray."
    )
    assert not [c for c in codes if c.startswith(("S52", "T14", "M84"))]


def test_builtin_pack_carries_the_tree_and_gives_the_same_answers(
    coder: BuiltinCoder, tmp_path: Path
) -> None:
    folder = coder.save(tmp_path / "pack")
    assert (folder / INDEX_TREE_FILE).is_file()
    loaded = load_pack(folder)
    text = "F/u visit for R distal radius fx, routine healing. Cast check."
    assert _codes(loaded, text) == _codes(coder, text)  # type: ignore[arg-type]
    without = BuiltinCoder(
        Knowledge(index_tree=coder.knowledge.index_tree), config=BuiltinConfig(index_walk=False)
    )
    assert "S52.501D" not in _codes(without, text)


def test_ranker_of_an_older_pack_reads_its_own_feature_columns() -> None:
    older = [f for f in FEATURES if not f.startswith("walk_")]
    columns = pack_columns(older)
    assert columns is not None and [FEATURES[i] for i in columns] == older
    assert pack_columns(list(FEATURES)) is None
    with pytest.raises(ValueError):
        pack_columns([*older, "a_feature_never_computed"])


def test_trained_pack_carries_the_tree_and_walks_after_loading(tree: IndexTree, tmp_path: Path) -> None:
    from medcode.model.trained.coder import DefaultConfig
    from medcode.training.default import fit_default

    from .synthetic import make_corpus

    config = DefaultConfig(use_dense=False, folds=2, ranker_folds=2, ranker_max_iter=30)
    trained, _ = fit_default(make_corpus(30, seed=3), Knowledge(index_tree=tree), config)
    assert trained.resources.generator.walker is not None
    folder = trained.save(tmp_path / "pack")
    assert (folder / INDEX_TREE_FILE).is_file()
    loaded = load_pack(folder)
    assert loaded.resources.generator.walker is not None  # type: ignore[attr-defined]
    text = "F/u visit for R distal radius fx, routine healing. Cast check."
    assert _codes(loaded, text) == _codes(trained, text)  # type: ignore[arg-type]
    # an older pack's rankers read a subset of the features: saved again, the pack still names that subset
    older = pack_columns([f for f in FEATURES if not f.startswith("walk_")])
    for task in loaded.tasks.values():  # type: ignore[attr-defined]
        task.columns = older
    again = loaded.save(tmp_path / "again")
    assert read_manifest(again).config["features"] == [FEATURES[i] for i in older]
