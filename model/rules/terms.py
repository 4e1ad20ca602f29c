"""Words of code titles against words of the note: does the note support this title?

A title is split into the words that must be documented ("right", "stage 3b", "macular edema") and the
words after "without", which must not be. Both sides go through the same normaliser: lower case,
abbreviations expanded ("ckd" -> "chronic kidney disease", in the wording of code titles, from the
project's one table, medcode.data.text_norm), equivalent forms merged ("diabetic" -> "diabetes"), Roman
numerals after "stage"/"type" turned into digits, a plural "s" dropped. The vocabulary is data
(resources/terms.json: the rules' own shorthand, equivalents, stopwords).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from medcode.data.text_norm import abbreviations
from medcode.model.rules.resources import load_resource

_WORD = re.compile(r"[a-z0-9]+(?:/[a-z0-9]+)?")


@dataclass(frozen=True)
class Vocabulary:
    stopwords: frozenset[str]
    equivalents: dict[str, str]
    phrases: dict[str, str]
    """Lower-case shorthand -> the words of code titles (the shared abbreviations, then the rules' own)."""
    roman: dict[str, str]
    roman_after: frozenset[str]
    implies: dict[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    data = load_resource("terms.json")
    return Vocabulary(
        stopwords=frozenset(data["stopwords"]),
        equivalents=dict(data["equivalents"]),
        phrases={**abbreviations().title_words(), **data["phrases"]},
        roman=dict(data["roman_numerals"]),
        roman_after=frozenset(data["roman_after"]),
        implies={k: tuple(v) for k, v in data["implies"].items()},
    )


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _raw_words(text: str) -> list[str]:
    lowered = text.lower().replace("non-", "non").replace("end-stage", "end stage")
    return _WORD.findall(lowered)


@lru_cache(maxsize=131072)
def normalize_words(text: str) -> tuple[str, ...]:
    """Normalised content words of a text, in order (stopwords kept; callers drop them)."""
    vocab = vocabulary()
    out: list[str] = []
    previous = ""
    for raw in _raw_words(text):
        expanded = vocab.phrases.get(raw)
        words = _WORD.findall(expanded) if expanded else [raw]
        for word in words:
            if previous in vocab.roman_after and word in vocab.roman:
                word = vocab.roman[word]
            word = vocab.equivalents.get(word, word)
            word = _stem(word)
            word = vocab.equivalents.get(word, word)
            out.append(word)
            previous = word
    return tuple(out)


def content_words(text: str) -> frozenset[str]:
    """Normalised words without stopwords, plus what they imply ("right" -> "unilateral")."""
    vocab = vocabulary()
    words = {w for w in normalize_words(text) if w not in vocab.stopwords}
    for word in list(words):
        words.update(vocab.implies.get(word, ()))
    return frozenset(words)


@dataclass(frozen=True)
class TitleTerms:
    """The words a title needs documented, and those it needs absent ("without macular edema")."""

    required: frozenset[str]
    excluded: frozenset[str]


@lru_cache(maxsize=131072)
def title_terms(title: str) -> TitleTerms:
    # nonessential modifiers in (parentheses) and [brackets] need not be documented
    lowered = re.sub(r"\([^()]*\)|\[[^\[\]]*\]", " ", title.lower())
    required_parts: list[str] = []
    excluded_parts: list[str] = []
    # "A with B without C, D": the words after "without" up to the next "with"/comma are excluded.
    pieces = re.split(r"\b(without|with)\b|,", lowered)
    mode = "required"
    for piece in pieces:
        if piece is None:
            mode = "required"
            continue
        token = piece.strip()
        if token == "without":
            mode = "excluded"
            continue
        if token == "with":
            mode = "required"
            continue
        (excluded_parts if mode == "excluded" else required_parts).append(piece)
    required = content_words(" ".join(required_parts))
    excluded = content_words(" ".join(excluded_parts)) - required
    return TitleTerms(required=required, excluded=excluded)


@dataclass(frozen=True)
class Support:
    """How well a set of note words covers a title's words beyond those of a reference title."""

    matched: int
    missing: int
    violated: bool

    @property
    def coverage(self) -> float:
        total = self.matched + self.missing
        return self.matched / total if total else 0.0


def title_support(title: str, note_words: frozenset[str], given: Iterable[str] = ()) -> Support:
    """Support of `title` by `note_words`; words in `given` (e.g. the parent title's) are not counted."""
    terms = title_terms(title)
    given_set = frozenset(given)
    needed = terms.required - given_set
    matched = len(needed & note_words)
    missing = len(needed) - matched
    violated = bool((terms.excluded - given_set) & note_words)
    return Support(matched=matched, missing=missing, violated=violated)
