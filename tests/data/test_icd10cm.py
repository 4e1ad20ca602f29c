from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data import icd10cm
from medcode.data.errors import UnknownCodeError
from medcode.data.icd10cm import load_icd10cm, load_icd10cm_from, normalize_code, parse_refs, ref_covers


def test_normalize_inserts_dot_after_category() -> None:
    assert normalize_code("e1122") == "E11.22"
    assert normalize_code(" E11.22 ") == "E11.22"
    assert normalize_code("s52521a") == "S52.521A"
    assert normalize_code("n18") == "N18"


def test_parse_refs_reads_categories_ranges_and_codes() -> None:
    assert parse_refs("type 1 diabetes mellitus (E10.-)") == ["E10"]
    assert parse_refs("stage of chronic kidney disease (N18.1-N18.6)") == ["N18.1-N18.6"]
    assert parse_refs("hypertensive CKD with stage 5 (I12.0)") == ["I12.0"]
    assert parse_refs("diabetes (E08-E13) and gestational (O24.4-)") == ["E08-E13", "O24.4"]
    assert parse_refs("nothing coded here, HbA1c high") == []


def test_ref_covers_prefixes_and_ranges() -> None:
    assert ref_covers("E10", "E10.9")
    assert ref_covers("E11.2-", "E11.22")
    assert not ref_covers("E10", "E11.9")
    assert ref_covers("E08-E13", "E11.22")
    assert not ref_covers("E08-E13", "E14.0")
    assert ref_covers("N18.1-N18.6", "N18.30")
    assert not ref_covers("N18.1-N18.6", "N18.9")


def test_fixture_entries_have_title_parent_chapter_and_block(tabular_xml: Path) -> None:
    icd = load_icd10cm_from(tabular_xml)
    entry = icd["e1122"]
    assert entry.title == "Type 2 diabetes mellitus with diabetic chronic kidney disease"
    assert entry.parent == "E11.2"
    assert icd.parents("E11.22") == ["E11.2", "E11"]
    assert entry.chapter == "4"
    assert entry.block == "E08-E13"
    assert entry.billable
    assert not icd["E11"].billable
    assert entry.depth == 3
    assert icd.children("E11") == ["E11.2", "E11.9"]
    assert icd["E11"].inclusion_terms == ("diabetes NOS",)
    assert icd.version == "ICD-10-CM 2026"


def test_notes_and_their_code_references(tabular_xml: Path) -> None:
    icd = load_icd10cm_from(tabular_xml)
    e11 = icd["E11"]
    assert e11.excludes1_refs == ("E10", "O24.4")
    assert e11.use_additional_refs == ("Z79.4",)
    e1122 = icd["E11.22"]
    assert e1122.use_additional_refs == ("N18.1-N18.6",)
    assert e1122.excludes2_refs == ("I12.0",)
    assert icd["S03"].code_also == ("any associated open wound",)
    assert icd.applicable_refs("E11.22", "excludes1") == ["E10", "O24.4", "P70-P74"]
    where = [w for w, _ in icd.applicable_notes("E11.22", "excludes1")]
    assert where == ["E11", "E11", "4"]


def test_seventh_character_expands_with_placeholder_x(tabular_xml: Path) -> None:
    icd = load_icd10cm_from(tabular_xml)
    assert "S03.0XXA" in icd
    expanded = icd["S03.0XXA"]
    assert expanded.title == "Dislocation of jaw, initial encounter"
    assert expanded.billable and expanded.parent == "S03.0" and expanded.seventh_char == "A"
    assert not icd["S03.0"].billable
    assert icd.children("S03.0") == ["S03.0XXA", "S03.0XXD", "S03.0XXS"]
    assert icd["S03.0"].seventh_chars["D"] == "subsequent encounter"


def test_seventh_character_definition_nearest_ancestor_wins(tabular_xml: Path) -> None:
    icd = load_icd10cm_from(tabular_xml)
    assert icd.children("S03.40") == ["S03.40XA"]
    assert icd["S03.40XA"].title == "Sprain of jaw, unspecified side, first visit"


def test_s06_death_codes_take_only_initial_encounter(tabular_xml: Path) -> None:
    icd = load_icd10cm_from(tabular_xml)
    assert icd.children("S06.1X7") == ["S06.1X7A"]
    assert icd.children("S06.1X1") == ["S06.1X1A", "S06.1X1D"]


def test_unknown_code_raises_and_get_returns_none(tabular_xml: Path) -> None:
    icd = load_icd10cm_from(tabular_xml)
    assert icd.get("Q99.99") is None
    assert "Q99.99" not in icd and 12 not in icd
    assert "E11.9" in icd and " e119" in icd
    with pytest.raises(UnknownCodeError, match=r"unknown ICD-10-CM code: Q99\.99"):
        icd["Q99.99"]


def test_second_load_reads_the_cache(
    tabular_xml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_icd10cm_from(tabular_xml, tmp_path)

    def no_parsing(path: Path) -> None:
        raise AssertionError("the XML should not be parsed again")

    monkeypatch.setattr(icd10cm, "parse_tabular", no_parsing)
    second = load_icd10cm_from(tabular_xml, tmp_path)
    assert [e.code for e in second.entries()] == [e.code for e in first.entries()]
    assert second["S03.0XXA"] == first["S03.0XXA"]


def test_broken_cache_is_rebuilt(tabular_xml: Path, tmp_path: Path) -> None:
    load_icd10cm_from(tabular_xml, tmp_path)
    cache = icd10cm._cache_file(tabular_xml, tmp_path)
    cache.write_bytes(b"not a pickle")
    assert "E11.22" in load_icd10cm_from(tabular_xml, tmp_path)


def test_without_a_cache_folder_nothing_is_written(tabular_xml: Path, tmp_path: Path) -> None:
    before = set(tmp_path.rglob("*"))
    assert "E11.22" in load_icd10cm_from(tabular_xml)
    assert set(tmp_path.rglob("*")) == before


# the packaged ICD-10-CM 2026 (always installed) -----------------------------------------------------------


def test_packaged_e1122_title() -> None:
    entry = load_icd10cm()["E11.22"]
    assert entry.title == "Type 2 diabetes mellitus with diabetic chronic kidney disease"
    assert entry.use_additional_refs == ("N18.1-N18.6",)


def test_packaged_s52521a_is_billable_with_seventh_character_title() -> None:
    icd = load_icd10cm()
    entry = icd["S52.521A"]
    assert entry.billable
    assert "Torus fracture of lower end of right radius, initial encounter for closed fracture" in entry.title
    assert not icd["S52.521"].billable
    assert icd["T15.00XA"].billable


def test_packaged_codes_match_the_official_code_list() -> None:
    icd = load_icd10cm()
    listed = (icd10cm.tabular_path().parent / "code-list-April-2026.txt").read_text().split()
    official = {c for c in listed if not c.isdigit() and "-" not in c}
    assert {code.replace(".", "") for code in icd} == official
    assert len(icd.billable_codes()) == 74_719


def test_packaged_load_reads_its_cache_without_parsing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = icd10cm.load_icd10cm_from(icd10cm.tabular_path(), tmp_path)  # writes the cache

    def no_parsing(path: Path) -> None:
        raise AssertionError("the packaged XML should not be parsed again")

    monkeypatch.setattr(icd10cm, "parse_tabular", no_parsing)
    again = icd10cm.load_icd10cm_from(icd10cm.tabular_path(), tmp_path)
    assert len(again) == len(first) and again["E11.22"] == first["E11.22"]
