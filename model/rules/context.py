"""What one encounter's note says, as the rules need it: present mentions, their words, and note cues.

Built once per encounter. A mention supports a code only when it is present (not negated, family or
hypothetical); the words the rules compare with code titles come from present mentions (text and
attributes) and from the evidence of the suggested codes that does not fall on a non-present mention.
Cues that 7th characters and trimester codes encode (initial / subsequent / sequela, open / closed
fracture, healing, weeks of gestation, twins) are read from the whole note with the phrase lists of
resources/note_cues.json.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from medcode.data.types import CodeSuggestion, Encounter, Evidence, Mention
from medcode.model.rules.refs import CodePattern, compact
from medcode.model.rules.resources import load_resource
from medcode.model.rules.terms import content_words

ATTRIBUTE_WORDS = ("laterality", "acuity", "severity", "stage", "episode", "anatomy", "trimester")


@lru_cache(maxsize=1)
def _cues() -> dict[str, Any]:
    data = load_resource("note_cues.json")
    compiled: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("description", "fiscal_year", "trimester_weeks"):
            compiled[key] = value
        elif isinstance(value, dict):
            compiled[key] = {k: [re.compile(p, re.IGNORECASE) for p in v] for k, v in value.items()}
        else:
            compiled[key] = [re.compile(p, re.IGNORECASE) for p in value]
    return compiled


CLAUSE_END = re.compile(r"[.;\n]")
"""Where a clause ends for the rules: a full stop, a semicolon or a line break."""


def around(
    text: str, start: int, end: int, ends: re.Pattern[str] = CLAUSE_END, *, window: int | None = None
) -> tuple[int, int]:
    """The bounds of the stretch of `text` that holds `text[start:end]`: from just after the last match of
    `ends` before `start` to the first match after `end`, else to the text's edges (with `window`: at most
    that many characters each way)."""
    low = 0 if window is None else max(0, start - window)
    high = len(text) if window is None else min(len(text), end + window)
    before = [m.end() for m in ends.finditer(text, low, start)]
    after = ends.search(text, end, high)
    return (before[-1] if before else low, after.start() if after else high)


def overlaps(evidence: Evidence, mention: Mention) -> bool:
    """Whether an evidence span and a mention share characters of the same document."""
    return (
        evidence.document_id == mention.document_id
        and evidence.start < mention.end
        and mention.start < evidence.end
    )


@dataclass
class NoteContext:
    """Read-only facts about one encounter's note for the rules."""

    encounter: Encounter
    mentions: list[Mention]

    # mentions and evidence ------------------------------------------------------------------------------
    @cached_property
    def present(self) -> list[Mention]:
        return [m for m in self.mentions if m.assertion.is_present]

    @cached_property
    def absent(self) -> list[Mention]:
        return [m for m in self.mentions if not m.assertion.is_present]

    def evidence_is_present(self, evidence: Evidence, words: frozenset[str] = frozenset()) -> bool:
        """Evidence supports a code unless it falls only on negated / family / hypothetical mentions.

        When a span covers several mentions (a whole sentence), only those sharing words with the code's
        title (`words`) count, if any does: "no fever, has cough" does not support fever."""
        hits = [m for m in self.mentions if overlaps(evidence, m)]
        if not hits:
            return True
        if words:
            relevant = [m for m in hits if content_words(m.text) & words]
            hits = relevant or hits
        return any(m.assertion.is_present for m in hits)

    def evidence_all_absent(self, suggestion: CodeSuggestion, title: str = "") -> bool:
        """Every evidence span of the code falls on a non-present mention (and none on a present one)."""
        words = content_words(title or suggestion.description)
        return bool(suggestion.evidence) and not any(
            self.evidence_is_present(e, words) for e in suggestion.evidence
        )

    def evidence_only_uncertain(self, suggestion: CodeSuggestion, title: str = "") -> bool:
        """Every mention under the code's evidence that names the condition is 'possible' (uncertain).

        A mention names the condition when its lexicon concept is the code (or an ancestor of it), else
        when it shares words with the code's title; spans naming no such mention ("Chest pain" beside "possible angina") do not count. With
        no naming mention anywhere, every mention under the evidence must be possible."""
        if not suggestion.evidence:
            return False
        words = content_words(title or suggestion.description)
        target = compact(suggestion.code)
        spans: list[list[Mention]] = []
        for evidence in suggestion.evidence:
            hits = [m for m in self.present if overlaps(evidence, m)]
            if hits:
                spans.append(hits)  # a span over no mention (a ranker's phrase match) says nothing either way
        if not spans:
            return False
        every = [m for hits in spans for m in hits]
        named = [m for m in every if any(target.startswith(compact(c)) for c in m.concepts)] or [
            m for m in every if content_words(m.text) & words
        ]
        if named:
            return all(m.assertion.possible for m in named)
        return all(m.assertion.possible for hits in spans for m in hits)

    def uncertain_mentions(self) -> list[Mention]:
        """Present mentions documented as possible (uncertain diagnoses)."""
        return [m for m in self.present if m.assertion.possible]

    def mentions_of(self, suggestion: CodeSuggestion) -> list[Mention]:
        """Present mentions under the code's evidence."""
        return [m for m in self.present if any(overlaps(e, m) for e in suggestion.evidence)]

    def concept_mentions(self, patterns: Iterable[CodePattern]) -> list[tuple[Mention, str]]:
        """(present mention, concept code) pairs whose lexicon concept a pattern covers."""
        pats = list(patterns)
        return [(m, c) for m in self.present for c in m.concepts if any(p.matches(c) for p in pats)]

    def is_supported(self, suggestion: CodeSuggestion, title: str = "") -> bool:
        """A candidate the note supports: evidence on a present mention, or a present mention's concept."""
        words = content_words(title or suggestion.description)
        if any(self.evidence_is_present(e, words) for e in suggestion.evidence):
            return True
        target = compact(suggestion.code)
        return any(compact(c) == target for m in self.present for c in m.concepts)

    # words ---------------------------------------------------------------------------------------------
    @cached_property
    def mention_words(self) -> frozenset[str]:
        words: set[str] = set()
        for mention in self.present:
            words |= content_words(mention.text)
            for key in ATTRIBUTE_WORDS:
                value = mention.attributes.get(key)
                if value:
                    words |= content_words(value)
        return frozenset(words | self.cue_words)

    @cached_property
    def words_by_mention(self) -> list[frozenset[str]]:
        """Words of each present mention with its attributes (one set per mention)."""
        out = []
        for mention in self.present:
            words = set(content_words(mention.text))
            for key in ATTRIBUTE_WORDS:
                value = mention.attributes.get(key)
                if value:
                    words |= content_words(value)
            out.append(frozenset(words | self.cue_words))
        return out

    def words_for(self, suggestions: Iterable[CodeSuggestion]) -> frozenset[str]:
        """Note words for judging codes derived from these suggestions: present mentions + their evidence."""
        words = set(self.mention_words)
        for suggestion in suggestions:
            for evidence in suggestion.evidence:
                if evidence.text and self.evidence_is_present(evidence):
                    words |= content_words(evidence.text)
        return frozenset(words)

    # whole-note cues -------------------------------------------------------------------------------------
    @cached_property
    def text(self) -> str:
        return "\n".join(d.text for d in self.encounter.documents)

    def cue(self, name: str) -> bool:
        patterns = _cues()[name]
        return any(p.search(self.text) for p in patterns)

    def cue_spans(self, name: str) -> list[tuple[str, int, int, str]]:
        out = []
        for document in self.encounter.documents:
            for pattern in _cues()[name]:
                for m in pattern.finditer(document.text):
                    out.append((document.document_id, m.start(), m.end(), m.group(0)))
        return out

    def which(self, name: str) -> list[str]:
        """Keys of a cue family ("episode", "healing", "trimester") whose phrases occur in the note."""
        return [key for key, patterns in _cues()[name].items() if any(p.search(self.text) for p in patterns)]

    def episode(self, suggestion: CodeSuggestion | None = None) -> list[str]:
        """Encounter episodes documented for a code: its mentions' 'episode' attribute, else note phrases."""
        if suggestion is not None:
            values = {m.attributes.get("episode", "").lower() for m in self.mentions_of(suggestion)}
            values.discard("")
            if values:
                return sorted(values)
        values = {m.attributes.get("episode", "").lower() for m in self.present}
        values.discard("")
        return sorted(values) if values else self.which("episode")

    @cached_property
    def gestational_weeks(self) -> int | None:
        if not self.cue("pregnancy_context"):
            return None
        for pattern in _cues()["gestational_weeks"]:
            m = pattern.search(self.text)
            if m:
                weeks = int(m.group(1))
                if 1 <= weeks <= 45:
                    return weeks
        return None

    @cached_property
    def trimester(self) -> str | None:
        named = self.which("trimester")
        if len(named) == 1:
            return named[0]
        weeks = self.gestational_weeks
        if weeks is None:
            return None
        for name, (low, high) in _cues()["trimester_weeks"].items():
            if low <= weeks <= high:
                return str(name)
        return None

    @cached_property
    def cue_words(self) -> frozenset[str]:
        """Words the note documents through cues rather than mentions (the trimester from weeks)."""
        return content_words(self.trimester) if self.trimester else frozenset()
