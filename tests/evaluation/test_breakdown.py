"""Results by training frequency and by ICD-10-CM chapter / PCS section."""

from __future__ import annotations

import pytest

from medcode.evaluation import breakdown


@pytest.mark.parametrize(
    ("code", "chapter"),
    [
        ("A41.9", "1"),
        ("C50.911", "2"),
        ("D49.9", "2"),
        ("D50.0", "3"),
        ("e1122", "4"),
        ("H59.9", "7"),
        ("H60.0", "8"),
        ("O9A.11", "15"),
        ("S52.501A", "19"),
        ("T88.7", "19"),
        ("W19", "20"),
        ("Z79.4", "21"),
        ("U07.1", "22"),
        ("XYZ", "other"),
    ],
)
def test_icd10cm_chapter_of_code(code: str, chapter: str) -> None:
    assert breakdown.icd10cm_chapter(code) == chapter


def test_pcs_section_is_first_character() -> None:
    assert breakdown.pcs_section("BW03ZZZ") == "B"
    assert breakdown.pcs_section("0DTJ4ZZ") == "0"
    assert breakdown.pcs_section("?") == "other"


def test_frequency_buckets_use_train_document_counts() -> None:
    freq = breakdown.document_frequencies([{"A"}] * 10 + [{"B"}] * 9 + [{"A", "B"}])
    assert freq["A"] == 11 and freq["B"] == 10
    assert breakdown.frequency_bucket("A", {"A": 10}) == "frequent"
    assert breakdown.frequency_bucket("A", {"A": 9}) == "few_shot"
    assert breakdown.frequency_bucket("A", {"A": 1}) == "few_shot"
    assert breakdown.frequency_bucket("A", {}) == "unseen"


def test_by_frequency_scores_each_bucket() -> None:
    freq = {"F": 20, "S": 3}
    predicted = [{"F", "U1"}, {"S"}]
    golds = [{"F", "U2"}, {"S", "U1"}]
    rankings = [["F", "U1", "U2"], ["S"]]
    rows = breakdown.by_frequency(predicted, golds, freq, rankings, k=2)
    assert rows["frequent"]["recall"] == 1.0 and rows["frequent"]["precision"] == 1.0
    assert rows["few_shot"]["n_gold"] == 1 and rows["few_shot"]["recall"] == 1.0
    unseen = rows["unseen"]
    assert unseen["n_codes"] == 2 and unseen["n_gold"] == 2
    assert unseen["precision"] == 0.0  # U1 predicted in doc 1, gold in doc 2
    assert unseen["recall"] == 0.0
    assert unseen["candidate_recall_at_2"] == 0.0  # U2 ranked third


def test_by_group_lists_chapters_with_titles() -> None:
    rows = breakdown.by_group("diagnosis", [{"E11.9"}], [{"E11.9", "I10"}])
    assert list(rows) == ["4", "9"]
    assert rows["4"]["f1"] == 1.0
    assert rows["9"]["recall"] == 0.0 and rows["9"]["precision"] is None
    assert "circulatory" in str(rows["9"]["title"])
