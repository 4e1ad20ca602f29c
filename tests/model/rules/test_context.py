from __future__ import annotations

import re

from medcode.model.rules.context import around


def test_the_clause_around_a_span_stops_at_the_nearest_clause_ends() -> None:
    text = "Seen today. History of stroke without residual deficits; BP fine"
    start = text.index("stroke")
    begin, end = around(text, start, start + len("stroke"))
    assert text[begin:end] == " History of stroke without residual deficits"


def test_a_span_with_no_clause_end_around_it_reaches_the_text_edges() -> None:
    text = "left knee osteoarthritis"
    assert around(text, 5, 9) == (0, len(text))


def test_a_window_bounds_the_stretch_when_no_end_is_near() -> None:
    text = "a" * 100 + "knee" + "b" * 100
    begin, end = around(text, 100, 104, re.compile(r"[,.]"), window=10)
    assert (begin, end) == (90, 114)
