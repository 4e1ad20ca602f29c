"""Code patterns as the tabular's notes write them."""

from __future__ import annotations

import pytest

from medcode.model.rules.refs import parse_patterns


def _covers(text: str, code: str) -> bool:
    return any(p.matches(code) for p in parse_patterns(text))


@pytest.mark.parametrize(
    ("note", "covered", "not_covered"),
    [
        ("type 1 diabetes mellitus (E10.-)", ["E10.9", "E10.22", "E10"], ["E11.9", "E01.0"]),
        ("E11.2-", ["E11.22", "E11.29"], ["E11.3", "E11.9"]),
        ("code to identify stage (N18.1-N18.6)", ["N18.1", "N18.30", "N18.6"], ["N18.9", "N19"]),
        ("diabetes mellitus (E08-E13 with .42)", ["E08.42", "E11.42"], ["E11.9", "E11.43", "E14.42"]),
        ("(E08-E13 with .51-.52)", ["E11.51", "E11.52"], ["E11.59", "E11.5"]),
        ("(E08-E13 with .62-)", ["E11.621", "E11.628"], ["E11.65"]),
        ("mononucleosis (B27.0-B27.9 with fifth character 1)", ["B27.01", "B27.91"], ["B27.09"]),
        ("(T36-T50 with fifth or sixth character 5)", ["T36.0X5A", "T43.215A"], ["T36.0X1A"]),
        ("(S02.- with 7th character B)", ["S02.0XXB"], ["S02.0XXA"]),
        ("I69. with final characters -23", ["I69.123"], ["I69.120"]),
        ("(J60-J67.9)", ["J60", "J67.2"], ["J68.0", "J59"]),
        ("(O00-O9A)", ["O00.1", "O99.89", "O9A.11"], ["P00.0"]),
        ("(D29.2.-)", ["D29.21"], ["D29.3"]),
        ("(I63.3-I63.5-)", ["I63.412"], ["I63.6", "I63.2"]),
        ("hemolytic anemia in G6PD deficiency (D55.0)", ["D55.0"], ["G60.0"]),
        ("code from category T31 or T32 to identify extent", ["T31.0", "T32.11"], ["T30.0"]),
    ],
)
def test_pattern_covers_codes_hierarchically(note: str, covered: list[str], not_covered: list[str]) -> None:
    for code in covered:
        assert _covers(note, code), code
    for code in not_covered:
        assert not _covers(note, code), code


def test_text_without_codes_has_no_pattern() -> None:
    assert parse_patterns("with C3 glomerulopathy") == ()
    assert parse_patterns("underlying disease, such as:") == ()


def test_codes_qualified_by_words_are_not_patterns() -> None:
    assert parse_patterns("diabetic acidosis - see categories E08-E10, E11, E13 with ketoacidosis") == ()
    assert parse_patterns("(E11 with ketoacidosis)") == ()
