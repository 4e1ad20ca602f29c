"""Sentence segmentation for clinical text.

Newlines end sentences (CodiEsp English text is one sentence per line; list items and vitals lines of other
notes too), except a soft line wrap (a line not ending in punctuation, continued in lower case). '.', '!'
and '?' end a sentence when the next word starts with a capital letter, a digit or a bullet; dotted
abbreviations ("Dr.", "e.g.", "q.d.") are single tokens (tokenizer special cases) and do not, decimals
("1.5 cm") are single tokens, and "1." at the start of a line is a list marker. Section headers start a
sentence and so does the text after them.

`sentence_spans(text)` is the same idea for callers that hold plain text rather than a parsed Doc (the
candidate generator's sentence queries and clause mentions, the transformer's chunking and evidence):
newlines end sentences, and '.', '!', '?' or ';' followed by a capital, a digit, '(', '[' or a quote.
The project has no other sentence splitter.
"""

from __future__ import annotations

import re
from typing import Any, cast

import numpy
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Token

from medcode.model.text.extensions import register_extensions
from medcode.model.text.rules import load_json_resource

SENTENCIZER_FACTORY = "medcode_sentencizer_v1"
_TERMINAL = frozenset({".", "!", "?", "...", "…"})
_LINE_END_PUNCT = frozenset({".", ":", ";", "!", "?", "...", "…"})
_OPENERS = frozenset({"-", "*", "•", "(", "[", '"', "'", "#", ">"})


_PLAIN_BOUNDARY = re.compile(r"(?:\n+|(?<=[.!?;])\s+(?=[A-Z0-9(\[\"']))")


def sentence_spans(text: str, max_chars: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each sentence of plain text, without surrounding blanks; offsets index `text`.
    With `max_chars`, a longer sentence is cut at the last space before the limit."""
    spans: list[tuple[int, int]] = []
    start = 0
    for end in [m.start() for m in _PLAIN_BOUNDARY.finditer(text)] + [len(text)]:
        _add_span(text, start, end, max_chars, spans)
        start = end
    return spans


def _add_span(text: str, start: int, end: int, max_chars: int | None, out: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while max_chars is not None and end - start > max_chars:
        cut = text.rfind(" ", start, start + max_chars)
        cut = cut if cut > start else start + max_chars
        out.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        out.append((start, end))


class ClinicalSentencizer:
    """Pipeline step: set `token.is_sent_start` on every token."""

    def __init__(self, sentence_final: frozenset[str]) -> None:
        register_extensions()
        self.sentence_final = sentence_final

    def __call__(self, doc: Doc) -> Doc:
        headers: list[bool] | None = doc._.header_tokens
        header_starts = {s.header_start for s in doc._.sections or ()}
        starts: list[int] = []
        last_content: Token | None = None
        for i, token in enumerate(doc):
            if i == 0:
                start = True
            elif token.is_space:
                starts.append(-1)
                continue
            elif token.idx in header_starts:
                start = True
            elif (
                headers is not None
                and last_content is not None
                and headers[last_content.i]
                and not headers[i]
            ):
                start = True  # the body after a header
            else:
                start = self._starts(doc, token, last_content, headers)
            starts.append(1 if start else -1)
            last_content = token
        if starts:
            # one array write: setting token.is_sent_start one by one re-scans the doc every time
            values = numpy.array(starts, dtype="int64").reshape(-1, 1).astype("uint64")
            doc.from_array([SENT_START], cast(Any, values))
        return doc

    def _starts(self, doc: Doc, token: Token, last: Token | None, headers: list[bool] | None) -> bool:
        if last is None:
            return True
        between = doc[last.i + 1 : token.i]
        newlines = sum(t.text.count("\n") for t in between)
        if newlines:
            wrapped = (
                newlines == 1
                and last.text not in _LINE_END_PUNCT
                and token.text[:1].islower()
                and not (headers is not None and headers[last.i])
            )
            return not wrapped
        previous = last.text
        if previous in _TERMINAL:
            if self._is_list_marker(doc, last):
                return False
            first = token.text[:1]
            return first.isupper() or first.isdigit() or first in _OPENERS
        if previous in self.sentence_final or self._is_letter_period(doc, last):
            return token.text[:1].isupper()
        return False

    @staticmethod
    def _is_letter_period(doc: Doc, token: Token) -> bool:
        """'hepatitis B.' ends a sentence; an initial ('J. Smith', 'Dr. J.') does not."""
        text = token.text
        if len(text) != 2 or text[1] != "." or not text[0].isalpha() or token.i == 0:
            return False
        before = doc[token.i - 1]
        first = before.text[:1]
        return (first.islower() or first.isdigit()) and not before.text.endswith(".")

    @staticmethod
    def _is_list_marker(doc: Doc, period: Token) -> bool:
        """'1.' / 'a.' at the start of a line (or of the text) is a list marker, not a sentence end."""
        if period.text != "." or period.i == 0:
            return False
        number = doc[period.i - 1]
        if not (number.text.isdigit() and len(number.text) <= 2) and not (
            len(number.text) == 1 and number.text.isalpha()
        ):
            return False
        if number.i == 0:
            return True
        before = doc[number.i - 1]
        return "\n" in before.text or "\n" in before.whitespace_


@Language.factory(SENTENCIZER_FACTORY, default_config={"tokenizer_rules": "tokenizer.json"})
def make_sentencizer(nlp: Language, name: str, tokenizer_rules: str) -> ClinicalSentencizer:
    data = load_json_resource(tokenizer_rules)
    return ClinicalSentencizer(frozenset(data.get("sentence_final", [])))
