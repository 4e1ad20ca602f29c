"""Mention recognition: leftmost-longest lexicon matching over token normal forms.

The note's tokens are read as a stream of normal-form words (an abbreviation's expansion counts as several
words); sentence ends, section headers and punctuation other than hyphens break matches. A match starts at
the first word of a token and ends at the last word of a token, so a mention is always a whole-token span
of the original text.
"""

from __future__ import annotations

from spacy.language import Language
from spacy.tokens import Doc, Span

from medcode.model.text.extensions import MENTIONS_KEY, register_extensions
from medcode.model.text.lexicon import Lexicon
from medcode.model.text.normalize import NORMALIZATION_DEFAULTS, Normalization
from medcode.model.text.sections import UNKNOWN_SECTION

MATCHER_FACTORY = "medcode_mention_matcher_v1"
_BARRIER = "\x00"


class MentionMatcher:
    """Pipeline step: put lexicon matches in `doc.spans["mentions"]` (label = mention type)."""

    def __init__(self, normalization: Normalization, lexicon: Lexicon | None = None) -> None:
        register_extensions()
        self.normalization = normalization
        self.lexicon = lexicon or Lexicon({})

    def set_lexicon(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon

    def _stream(self, doc: Doc) -> tuple[list[str], list[int], list[bool], list[bool]]:
        """Normal-form words, the token of each, and whether each word starts / ends its token."""
        headers: list[bool] | None = doc._.header_tokens
        transparent = self.normalization.is_transparent
        words: list[str] = []
        owners: list[int] = []
        firsts: list[bool] = []
        lasts: list[bool] = []
        for token in doc:
            i = token.i
            if token.is_space or (token.is_sent_start and words) or (headers is not None and headers[i]):
                if words and words[-1] != _BARRIER:
                    words.append(_BARRIER)
                    owners.append(-1)
                    firsts.append(False)
                    lasts.append(False)
                if token.is_space or (headers is not None and headers[i]):
                    continue
            if transparent(token.text):
                continue
            pieces = token.norm_.split() or [token.lower_]
            for index, piece in enumerate(pieces):
                words.append(piece)
                owners.append(i)
                firsts.append(index == 0)
                lasts.append(index == len(pieces) - 1)
        return words, owners, firsts, lasts

    def words(self, doc: Doc) -> list[str]:
        """The normal-form word stream the lexicon is matched on ("\x00" marks sentence and header breaks)."""
        return self._stream(doc)[0]

    def find(self, doc: Doc) -> list[tuple[int, int, str, tuple[str, ...], str]]:
        """Matches as (start token, end token exclusive, type, codes, key)."""
        entries = self.lexicon.entries
        prefixes = self.lexicon.prefixes
        words, owners, firsts, lasts = self._stream(doc)
        found: list[tuple[int, int, str, tuple[str, ...], str]] = []
        position = 0
        count = len(words)
        while position < count:
            word = words[position]
            if not firsts[position] or (word not in entries and word not in prefixes):
                position += 1
                continue
            best: tuple[int, str] | None = None
            key = word
            end = position
            while True:
                if lasts[end] and key in entries:
                    best = (end, key)
                if key not in prefixes or end + 1 >= count or words[end + 1] == _BARRIER:
                    break
                end += 1
                key = f"{key} {words[end]}"
            if best is None:
                position += 1
                continue
            last, key = best
            kind, codes, _source = entries[key]
            found.append((owners[position], owners[last] + 1, kind, codes, key))
            position = last + 1
        return found

    def __call__(self, doc: Doc) -> Doc:
        sections: list[str] | None = doc._.token_sections
        spans: list[Span] = []
        for start, end, kind, codes, key in self.find(doc):
            span = Span(doc, start, end, label=kind)
            span._.concepts = codes
            span._.term = key
            span._.section = sections[start] if sections is not None else UNKNOWN_SECTION
            spans.append(span)
        doc.spans[MENTIONS_KEY] = spans
        return doc


@Language.factory(MATCHER_FACTORY, default_config=NORMALIZATION_DEFAULTS)
def make_mention_matcher(nlp: Language, name: str, normalization: str, abbreviations: str) -> MentionMatcher:
    return MentionMatcher(Normalization.load(normalization, abbreviations))
