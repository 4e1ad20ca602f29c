"""Mention modifiers: anatomy, laterality, acuity, severity, stage and episode, as `span._.attributes`.

Each mention is read together with a small window of its sentence (a few tokens before and after, not
across ',' ';' ':' brackets or another mention). Modifier words come from resources/modifiers.json and
anatomical sites from resources/anatomy.txt, both matched on token normal forms; stages ("CKD 3b",
"stage IV", "NYHA class III") come from regular expressions over the window text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc, Span

from medcode.model.text.extensions import MENTIONS_KEY, doc_text, register_extensions
from medcode.model.text.normalize import NORMALIZATION_DEFAULTS, Normalization
from medcode.model.text.rules import PhraseTrie, load_json_resource, resource_path

MODIFIERS_FACTORY = "medcode_modifiers_v1"
_WINDOW_STOPS = frozenset({",", ";", ":", "(", ")", "[", "]", ".", "and", "or", "but", "with", "without"})
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}


@dataclass
class ModifierRules:
    terms: PhraseTrie[tuple[str, str]]
    """Normal-form phrase -> (attribute, value); anatomy included as ("anatomy", site)."""
    stage_patterns: list[re.Pattern[str]]
    window_before: int
    window_after: int

    @classmethod
    def load(
        cls, normalization: Normalization, rules: str = "modifiers.json", anatomy: str = "anatomy.txt"
    ) -> ModifierRules:
        data = load_json_resource(rules)
        trie: PhraseTrie[tuple[str, str]] = PhraseTrie()
        for attribute, spec in data["attributes"].items():
            for phrase, value in spec["terms"].items():
                trie.add(_words(normalization, phrase), (attribute, value))
        for line in resource_path(anatomy).read_text(encoding="utf-8").splitlines():
            site = line.strip()
            if site and not site.startswith("#"):
                trie.add(_words(normalization, site), ("anatomy", site))
        patterns = [re.compile(p) for p in data.get("patterns", {}).get("stage", [])]
        return cls(trie, patterns, int(data.get("window_before", 4)), int(data.get("window_after", 3)))


def _words(normalization: Normalization, phrase: str) -> list[str]:
    words: list[str] = []
    for part in re.findall(r"[\w/]+|[^\w\s]", phrase):
        if not normalization.is_transparent(part):
            words.extend(normalization.word(part).split())
    return words


def _stage_value(match: re.Match[str]) -> str:
    groups = [g for g in match.groups() if g]
    if not groups:
        return match.group(0).lower()
    value = groups[0].lower()
    value = _ROMAN.get(value, value)
    if len(groups) > 1:
        value += groups[1].lower()
    return " ".join(value.replace("-", " ").split())


class ModifierTagger:
    """Pipeline step: fill `span._.attributes` of every mention."""

    def __init__(self, rules: ModifierRules, normalization: Normalization) -> None:
        register_extensions()
        self.rules = rules
        self.normalization = normalization

    def _window(self, doc: Doc, span: Span, taken: set[int]) -> tuple[int, int]:
        start = span.start
        steps = 0
        while start > 0 and steps < self.rules.window_before and not doc[start].is_sent_start:
            previous = doc[start - 1]
            if previous.i in taken or previous.lower_ in _WINDOW_STOPS or "\n" in previous.text:
                break
            start -= 1
            steps += not previous.is_space
        end = span.end
        steps = 0
        while end < len(doc) and steps < self.rules.window_after and not doc[end].is_sent_start:
            following = doc[end]
            if following.i in taken or following.lower_ in _WINDOW_STOPS or "\n" in following.text:
                break
            end += 1
            steps += not following.is_space
        return start, end

    def attributes(self, doc: Doc, span: Span, taken: set[int], text: str | None = None) -> dict[str, str]:
        start, end = self._window(doc, span, taken)
        words: list[str] = []
        owners: list[int] = []
        for token in doc[start:end]:
            if token.is_space or self.normalization.is_transparent(token.text):
                continue
            for piece in (token.norm_ or token.lower_).split():
                words.append(piece)
                owners.append(token.i)
        found: dict[str, str] = {}
        inside_anatomy: str | None = None
        for first, _last, values in self.rules.terms.find_all(words):
            attribute, value = values[0]
            if attribute == "anatomy":
                if span.start <= owners[first] < span.end and inside_anatomy is None:
                    inside_anatomy = value
                found.setdefault(attribute, value)
            else:
                found.setdefault(attribute, value)
        if inside_anatomy is not None:
            found["anatomy"] = inside_anatomy
        if text is None:
            text = doc_text(doc)
        window_text = text[doc[start].idx : doc[end - 1].idx + len(doc[end - 1].text)]
        for pattern in self.rules.stage_patterns:
            match = pattern.search(window_text)
            if match:
                found["stage"] = _stage_value(match)
                break
        return found

    def __call__(self, doc: Doc) -> Doc:
        spans = list(doc.spans.get(MENTIONS_KEY, []))
        if not spans:
            return doc
        covered = {i for span in spans for i in range(span.start, span.end)}
        text = doc_text(doc)
        for span in spans:
            taken = covered.difference(range(span.start, span.end))
            span._.attributes = self.attributes(doc, span, taken, text)
        return doc


@Language.factory(
    MODIFIERS_FACTORY,
    default_config={"rules": "modifiers.json", "anatomy": "anatomy.txt", **NORMALIZATION_DEFAULTS},
)
def make_modifier_tagger(
    nlp: Language, name: str, rules: str, anatomy: str, normalization: str, abbreviations: str
) -> ModifierTagger:
    norm = Normalization.load(normalization, abbreviations)
    return ModifierTagger(ModifierRules.load(norm, rules, anatomy), norm)
