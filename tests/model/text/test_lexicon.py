from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from medcode.data.cache import read_cache, write_cache
from medcode.model.text.lexicon import Lexicon, TermKeyer, TermSpec
from medcode.model.text.pipeline import make_keyer, make_nlp, stop_keys


@pytest.fixture(scope="module")
def keyer() -> TermKeyer:
    return make_keyer(make_nlp())


def test_keys_are_normal_forms(keyer: TermKeyer) -> None:
    assert keyer.key("Crohn's Diseases") == "crohn disease"
    assert keyer.key("Non-small cell lung cancer") == "non small cell lung cancer"
    assert keyer.key("HTN") == "hypertension"
    assert keyer.key("Haemorrhages") == "hemorrhage"


def test_first_term_sets_the_type_and_codes_accumulate(keyer: TermKeyer) -> None:
    lexicon = Lexicon.build(
        [
            TermSpec("pneumonia", "condition", ("J18.9",), "core"),
            TermSpec("Pneumonias", "sign_symptom", ("J18.8", "J18.9"), "icd10cm"),
        ],
        keyer,
    )
    entry = lexicon.get("pneumonia")
    assert entry is not None
    assert entry.type == "condition"
    assert entry.codes == ("J18.9", "J18.8")


def test_derived_parts_never_add_codes_to_an_existing_key(keyer: TermKeyer) -> None:
    lexicon = Lexicon.build(
        [
            TermSpec("type 2 diabetes mellitus", "condition", ("E11.9",), "icd10cm"),
            TermSpec("type 2 diabetes mellitus", "condition", ("E11.21",), "icd10cm_part"),
        ],
        keyer,
    )
    assert lexicon.entries["type 2 diabetes mellitus"][1] == ("E11.9",)


def test_stage_variants_and_prefixes(keyer: TermKeyer) -> None:
    lexicon = Lexicon.build([TermSpec("Chronic kidney disease stage 3b", codes=("N18.32",))], keyer)
    assert "chronic kidney disease 3b" in lexicon
    assert lexicon.is_prefix("chronic kidney")
    assert not lexicon.is_prefix("kidney")


def test_generic_and_stop_terms_are_left_out_of_generated_sources(keyer: TermKeyer) -> None:
    specs = [
        TermSpec("right eye", source="icd10cm_part"),
        TermSpec("disease", source="icd10cm_index"),
        TermSpec("ab", source="icd10cm_index"),
        TermSpec("of the", source="icd10cm"),
        TermSpec("the skin", source="icd10cm_part"),
        TermSpec("disease", source="core", codes=("R69",)),
        TermSpec("HIV", source="core", codes=("B20",)),
    ]
    lexicon = Lexicon.build(specs, keyer, stop_keys=stop_keys(keyer))
    assert set(lexicon.entries) == {"disease", "hiv"}
    assert lexicon.entries["disease"][2] == "core"


def test_cache_write_and_read_round_trip(keyer: TermKeyer, tmp_path: Path) -> None:
    lexicon = Lexicon.build([TermSpec("acute appendicitis", codes=("K35.80",))], keyer, meta={"v": 1})
    path = tmp_path / "text" / "lexicon.pkl"
    assert write_cache(path, lexicon.write, "lexicon cache")
    loaded = read_cache(path, Lexicon.read, "lexicon cache")
    assert loaded is not None
    assert loaded.entries == lexicon.entries
    assert loaded.prefixes == lexicon.prefixes
    assert loaded.meta == {"v": 1}
    assert [p.name for p in path.parent.iterdir()] == ["lexicon.pkl"]  # no temporary file left


def test_a_cache_of_another_format_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "lexicon.pkl"
    path.write_bytes(pickle.dumps({"format": 0, "entries": {}}))
    assert read_cache(path, Lexicon.read, "lexicon cache") is None
    assert "lexicon cache" in caplog.text and "format 0" in caplog.text
