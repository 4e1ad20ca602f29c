"""Token normalisation that never changes the text: normal forms go to `token.norm_`.

The same `Normalization` turns lexicon terms into keys, so a note matches the lexicon through British
spellings, plurals, roman numerals and abbreviations ("HTN" -> "hypertension"), while every mention keeps
the offsets of the original text. An abbreviation's normal form may hold several words
("CKD" -> "chronic kidney disease"); the matcher reads them as consecutive tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from spacy.language import Language
from spacy.tokens import Doc

from medcode.data.text_norm import abbreviations as load_abbreviations
from medcode.data.text_norm import strip_accents
from medcode.model.text.rules import load_json_resource

NORMALIZER_FACTORY = "medcode_normalizer_v1"
NORMALIZATION_DEFAULTS = {"normalization": "normalization.json", "abbreviations": ""}
"""The default config of every pipeline step that builds a `Normalization` (its two data files)."""
_CACHE_LIMIT = 200_000


@dataclass
class Normalization:
    """Character folding, spelling, numerals, plurals and abbreviation expansion, from data files."""

    characters: dict[str, str]
    spellings: list[tuple[str, str]]
    numerals: dict[str, str]
    irregular_plurals: dict[str, str]
    singular_words: frozenset[str]
    transparent: frozenset[str]
    abbreviations_ci: dict[str, str]
    abbreviations_cs: dict[str, str]
    abbreviation_patterns: list[tuple[re.Pattern[str], str]]
    _cache: dict[str, str] = field(default_factory=dict, repr=False)
    _table: dict[int, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._table = {ord(k): v for k, v in self.characters.items()}

    @classmethod
    def load(cls, normalization: str = "normalization.json", abbreviations: str = "") -> Normalization:
        """From a normalisation data file and an abbreviation table (a path; empty: the project's table,
        `medcode/data/resources/abbreviations.tsv`)."""
        norm = load_json_resource(normalization)
        abbr = load_abbreviations(abbreviations or None)
        return cls(
            characters=dict(norm.get("characters", {})),
            spellings=[(a, b) for a, b in norm.get("spellings", [])],
            numerals=dict(norm.get("numerals", {})),
            irregular_plurals=dict(norm.get("irregular_plurals", {})),
            singular_words=frozenset(norm.get("singular_words", [])),
            transparent=frozenset(norm.get("transparent_tokens", [])),
            abbreviations_ci=abbr.case_insensitive,
            abbreviations_cs=abbr.case_sensitive,
            abbreviation_patterns=abbr.patterns,
        )

    def fold(self, text: str) -> str:
        """Lower case, typographic characters unified, accents removed."""
        return strip_accents(text.translate(self._table).lower())

    def singular(self, word: str) -> str:
        if word in self.irregular_plurals:
            return self.irregular_plurals[word]
        if len(word) < 4 or not word.isalpha() or word in self.singular_words:
            return word
        if word.endswith("ies") and len(word) > 4:
            return word[:-3] + "y"
        if word.endswith(("sses", "shes", "xes")) or (word.endswith("ches") and not word.endswith("aches")):
            return word[:-2]
        if word.endswith(("ss", "us", "is")):
            return word
        if word.endswith("s"):
            return word[:-1]
        return word

    def word(self, text: str) -> str:
        """The normal form of one word, without abbreviation expansion."""
        folded = self.fold(text)
        if len(folded) == 2 and folded[1] == "." and folded[0].isalpha():
            folded = folded[0]  # "B." at a sentence end is the letter B
        for old, new in self.spellings:
            if old in folded:
                folded = folded.replace(old, new)
        if folded in self.numerals:
            return self.numerals[folded]
        return self.singular(folded)

    def token(self, text: str) -> str:
        """The normal form of one token as written in the note (may hold several words)."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        norm = self._compute(text)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = norm
        return norm

    def _compute(self, text: str) -> str:
        expansion = self.abbreviations_cs.get(text)
        if expansion is not None:
            return expansion
        folded = self.fold(text)
        expansion = self.abbreviations_ci.get(folded)
        if expansion is not None:
            return expansion
        for pattern, template in self.abbreviation_patterns:
            match = pattern.fullmatch(folded)
            if match:
                return match.expand(template)
        return self.word(text)

    def is_transparent(self, text: str) -> bool:
        """Tokens the matcher skips ('-', possessive 's): "Crohn's" matches "Crohn", "x-ray" "x ray"."""
        return text in self.transparent


class Normalizer:
    """Pipeline step: set `token.norm_` to the normal form of every token (the text is untouched)."""

    def __init__(self, normalization: Normalization) -> None:
        self.normalization = normalization

    def __call__(self, doc: Doc) -> Doc:
        token_norm = self.normalization.token
        for token in doc:
            if not token.is_space:
                token.norm_ = token_norm(token.text)
        return doc


@Language.factory(NORMALIZER_FACTORY, default_config=NORMALIZATION_DEFAULTS)
def make_normalizer(nlp: Language, name: str, normalization: str, abbreviations: str) -> Normalizer:
    return Normalizer(Normalization.load(normalization, abbreviations))
