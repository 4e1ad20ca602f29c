from __future__ import annotations

from medcode.model.candidates.lexical import LexicalIndex
from medcode.model.candidates.tokens import tokens
from medcode.model.catalog import CM, Term


def _index() -> LexicalIndex:
    terms = [
        Term(CM, "E11.9", "Type 2 diabetes mellitus without complications", "title"),
        Term(CM, "E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease", "title"),
        Term(CM, "N18.9", "Chronic kidney disease, unspecified", "title"),
        Term(CM, "I10", "Essential (primary) hypertension", "title"),
        Term(CM, "I10", "High blood pressure", "inclusion"),
        Term(CM, "A78", "Q fever", "title"),
        Term(CM, "R50.9", "Fever, unspecified", "title"),
    ]
    return LexicalIndex(terms)


def test_tokens_normalise_abbreviations_and_inflections() -> None:
    assert tokens("DM2 with CKD") == tokens("type 2 diabetes mellitus with chronic kidney disease")
    assert tokens("Diabetic") == tokens("diabetes")


def test_combination_query_ranks_the_combination_code_first() -> None:
    hits = _index().search(["type 2 diabetes with diabetic chronic kidney disease"], k=3)[0]
    assert hits[0].code == "E11.22"
    assert hits[0].query_coverage == 1.0


def test_synonym_names_retrieve_their_code_once() -> None:
    hits = _index().search(["high blood pressure"], k=5)[0]
    assert [h.code for h in hits].count("I10") == 1
    assert hits[0].code == "I10"
    assert hits[0].kind == "inclusion"


def test_plain_fever_prefers_the_unspecified_fever_code() -> None:
    hits = _index().search(["fever"], k=2)[0]
    assert hits[0].code == "R50.9"


def test_query_without_known_words_finds_nothing() -> None:
    assert _index().search(["zzzz qqqq"], k=3) == [[]]


def test_batched_scoring_and_search_agree_with_one_query_at_a_time() -> None:
    index = _index()
    queries = ["type 2 diabetes with kidney disease", "fever", "high blood pressure", "zzz unknown"]
    codes = ["E11.22", "E11.9", "I10", "R50.9", "A78", "NOPE"]
    batched = index.score_many([(q, codes) for q in queries])
    for query, got in zip(queries, batched, strict=True):
        assert got == index.score_codes(query, codes)
        assert "NOPE" not in got
    assert batched[2]["I10"].term == "High blood pressure"
    assert batched[2]["I10"].query_coverage == 1.0
    together = index.search(queries, k=3)
    assert together == [index.search([q], k=3)[0] for q in queries]
    assert together[1][0].code == "R50.9" and together[3] == []


def test_coverage_of_a_partial_match() -> None:
    hit = _index().score_codes("chronic kidney disease stage 3", ["N18.9"])["N18.9"]
    assert 0.0 < hit.query_coverage < 1.0
    assert hit.term_coverage > hit.query_coverage
