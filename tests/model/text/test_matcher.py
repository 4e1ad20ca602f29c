from __future__ import annotations

from medcode.model.text import TextPipeline, build_pipeline


def texts(pipeline: TextPipeline, text: str) -> list[str]:
    return [m.text for m in pipeline.extract(text)]


def test_longest_match_wins(small_pipeline: TextPipeline) -> None:
    mentions = small_pipeline.extract("CT showed a right pleural effusion.")
    assert [m.text for m in mentions] == ["pleural effusion"]
    assert mentions[0].concepts == ["J90"]


def test_plurals_spellings_and_possessives_match(small_pipeline: TextPipeline) -> None:
    assert texts(small_pipeline, "Two fractures and a hemorrhage.") == ["fractures", "hemorrhage"]
    assert texts(small_pipeline, "Known Crohns disease.") == ["Crohns disease"]
    assert texts(small_pipeline, "Known Crohn\u2019s disease.") == ["Crohn\u2019s disease"]


def test_abbreviations_match_their_expansion(small_pipeline: TextPipeline) -> None:
    mentions = small_pipeline.extract("PMH: HTN, T2DM, CKD 3b and CAD.")
    assert [(m.text, m.concepts) for m in mentions] == [
        ("HTN", ["I10"]),
        ("T2DM", ["E11.9"]),
        ("CKD 3b", ["N18.32"]),
        ("CAD", ["I25.10"]),
    ]


def test_matches_do_not_cross_sentences(small_pipeline: TextPipeline) -> None:
    assert texts(small_pipeline, "He had chest.\nPain was severe.") == []
    assert texts(small_pipeline, "Chest. Pain.") == []


def test_section_headers_are_never_mentions() -> None:
    pipeline = build_pipeline(["family history", "present illness", "cough"])
    text = "HISTORY OF PRESENT ILLNESS: cough.\nFAMILY HISTORY: none."
    assert texts(pipeline, text) == ["cough"]
    assert texts(pipeline, "There is a family history of it.") == ["family history"]


def test_mention_types_come_from_the_lexicon(small_pipeline: TextPipeline) -> None:
    kinds = {m.text: m.type for m in small_pipeline.extract("Fever after appendectomy; fracture of femur.")}
    assert kinds == {"Fever": "sign_symptom", "appendectomy": "procedure", "fracture of femur": "injury"}


def test_hyphen_and_spacing_variants_match() -> None:
    pipeline = build_pipeline([("non-small cell lung cancer", "condition", ["C34.90"])])
    for text in ("non-small cell lung cancer", "non small cell lung cancer", "Non-Small-Cell lung cancer"):
        assert [m.concepts for m in pipeline.extract(text)] == [["C34.90"]], text


def test_an_empty_lexicon_finds_nothing() -> None:
    assert build_pipeline([]).extract("Pneumonia and fever.") == []
