from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from medcode.data.codesystems import CodeSets
from medcode.data.search import CodeSearch, SearchDoc, load_code_search, stem, tokens


def _tiny() -> CodeSearch:
    docs = [
        SearchDoc(
            "ICD-10-CM", "E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease", "title"
        ),
        SearchDoc("ICD-10-CM", "E11.9", "Type 2 diabetes mellitus without complications", "title"),
        SearchDoc(
            "ICD-10-CM", "E10.22", "Type 1 diabetes mellitus with diabetic chronic kidney disease", "title"
        ),
        SearchDoc("ICD-10-CM", "N18.9", "Chronic kidney disease, unspecified", "title"),
        SearchDoc("ICD-10-CM", "I10", "Essential (primary) hypertension", "title"),
        SearchDoc("ICD-10-CM", "I10", "high blood pressure", "inclusion"),
        SearchDoc("ICD-10-PCS", "BW03ZZZ", "Plain Radiography of Chest", "title"),
        SearchDoc("HCPCS", "J1611", "Injection, glucagon hydrochloride, per 1 mg", "title"),
    ]
    titles = {(d.system, d.code): d.text for d in docs if d.kind == "title"}
    return CodeSearch.build(docs, titles)


def test_stemming_joins_word_forms() -> None:
    assert stem("diabetes") == stem("diabetic") == "diabet"
    assert stem("fractures") == stem("fracture")
    assert tokens("Type II diabetes") == ["typ", "2", "diabet"]


def test_best_title_ranks_first() -> None:
    hits = _tiny().search("type 2 diabetes with diabetic chronic kidney disease", limit=3)
    assert [h.code for h in hits][:2] == ["E11.22", "E10.22"]
    assert hits[0].score > hits[1].score
    assert hits[0].system == "ICD-10-CM"


def test_inclusion_terms_are_searched_and_reported() -> None:
    hit = _tiny().search("high blood pressure", limit=1)[0]
    assert hit.code == "I10"
    assert hit.title == "Essential (primary) hypertension"
    assert hit.matched_term == "high blood pressure"


def test_system_filter_and_abbreviations() -> None:
    search = _tiny()
    hits = search.search("chest x-ray", system="ICD-10-PCS")
    assert [h.code for h in hits] == ["BW03ZZZ"]
    assert all(h.system == "HCPCS" for h in search.search("glucagon injection", system="hcpcs"))
    assert search.search("ckd", limit=1)[0].code == "N18.9"


def test_typos_map_to_known_words() -> None:
    assert _tiny().search("hypertenson", limit=1)[0].code == "I10"


def test_code_shaped_query_lists_the_code_and_its_children() -> None:
    hits = _tiny().search("e11", limit=5)
    assert [h.code for h in hits[:2]] == ["E11.22", "E11.9"]
    assert _tiny().search("E11.22", limit=1)[0].score == 1.0


def test_nothing_to_find_gives_no_hits() -> None:
    assert _tiny().search("   ") == []
    assert _tiny().search("zzzzqqq") == []


def test_real_icd10cm_search_puts_e1122_first() -> None:
    search = load_code_search(CodeSets(None))
    hits = search.search("type 2 diabetes with diabetic chronic kidney disease")
    assert hits[0].code == "E11.22"
    assert search.search("torus fracture lower end right radius initial", limit=3)[0].code == "S52.521A"
    timings = []
    for query in (
        "type 2 diabetes with diabetic chronic kidney disease",
        "acute appendicitis",
        "e11.2",
        "fracture",
    ):
        started = time.perf_counter()
        search.search(query, limit=10)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.05


def test_site_and_main_term_outrank_laterality_and_encounter_words() -> None:
    search = load_code_search(CodeSets(None))
    hits = search.search("hip fracture right initial", limit=5)
    # S72.00 includes "Fracture of hip NOS": its right, initial-encounter child first, not a hand fracture
    assert hits[0].code == "S72.001A"
    assert all("hand" not in hit.title for hit in hits[:3])
    # laterality still picks among siblings
    assert search.search("left knee pain", limit=1)[0].code == "M25.562"
    # a child naming a site of its own does not inherit its parent's NOS term
    pathological = search.search("pathological fracture right hand initial", limit=1)[0]
    assert pathological.code == "M84.441A"


def test_the_index_is_cached_on_disk(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sets = CodeSets(data_root)
    first = load_code_search(sets, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "search").glob("index-*.pkl"))) == 1

    def no_build(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the cached index was built again")

    monkeypatch.setattr(CodeSearch, "build", no_build)
    second = load_code_search(sets, cache_dir=tmp_path / "cache")
    assert len(second) == len(first)
    assert second.search("Diabetes type 2 with chronic kidney disease", limit=1)[0].code == "E11.22"
    assert {"ICD-10-CM", "ICD-10-PCS", "HCPCS", "CPT"} <= set(second.systems)


@pytest.mark.shared
@pytest.mark.slow
def test_shared_index_terms_help_ranking(shared_data: Path) -> None:
    search = load_code_search(CodeSets(shared_data))
    assert search.search("hypertension", limit=1)[0].code == "I10"
    assert search.search("chest x-ray", system="ICD-10-PCS", limit=1)[0].code == "BW03ZZZ"
