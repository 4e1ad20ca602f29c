"""Unspecified beside specific: a final code whose title says "unspecified" is not final when a more
specific final code of the same category documents the same condition (J44.9 beside J44.1, I50.9
beside I50.23, N18.9 beside N18.4).

"More specific" is read from the titles and the note: the other code's words (its title without
"unspecified", "other specified" and an "unspecified whether ..." clause) hold all of this code's words
and more (I50.20 "unspecified systolic heart failure" is more specific than I50.9 "heart failure,
unspecified"; E03.8 "other specified hypothyroidism" is not more specific than E03.9), and the note
documents at least half of those further words for that code (its mentions and evidence): a ranker's
guess of "chronic" atrial fibrillation does not push out the documented "atrial fibrillation". Codes of
one category that name different things ("pain in unspecified knee" beside "pain in right shoulder")
both stay. The unspecified code moves to the
candidates with its confidence; when the ranker was clearly surer of it than of the specific code, the
encounter routes with "unspecified:CODE".

A second pass offers the specific code the note supports when the ranker left it among the candidates:
an unspecified final code gives way to the one candidate of its category whose further words its own
present evidence documents in full ("cellulitis of left lower limb": L03.116, not L03.90).
"""

from __future__ import annotations

import re
from functools import lru_cache

from medcode.data.types import CodeSuggestion, Evidence
from medcode.model.rules.context import around
from medcode.model.rules.laterality import note_sides
from medcode.model.rules.refs import compact
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.terms import content_words

_WHETHER = re.compile(r",?\s*unspecified (?:whether|as to)\b[^,]*", re.IGNORECASE)
_NONESSENTIAL = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


_UNSPECIFIED_ORGANISM = re.compile(r",?\s*unspecified organism\b", re.IGNORECASE)
_CAUSE = re.compile(r"\bdue to\b|\bbacterial\b|\bviral\b", re.IGNORECASE)


def _names_organism(other_title: str, title: str) -> bool:
    """Whether `other_title` is the condition of `title` ("Pneumonia, unspecified organism") with its
    organism named ("Pneumonia due to Streptococcus pneumoniae"): the index gives the organism's code, and
    the unspecified-organism code does not stand beside it (Sepsis A41.9 beside A40.3 alike)."""
    condition = specific_words(_UNSPECIFIED_ORGANISM.sub(" ", title))
    return bool(condition) and condition <= specific_words(other_title) and bool(_CAUSE.search(other_title))


def is_unspecified(title: str) -> bool:
    return "unspecified" in title.lower()


@lru_cache(maxsize=65536)
def specific_words(title: str) -> frozenset[str]:
    """The words a title documents: nonessential (parenthesised) words and "unspecified whether ..."
    clauses left out ("unspecified" itself is a stopword)."""
    return content_words(_WHETHER.sub(" ", _NONESSENTIAL.sub(" ", title)))


def extra_words(other_title: str, title: str) -> frozenset[str] | None:
    """The words `other_title` adds to everything `title` says; None when it does not say all of it or
    nothing more."""
    words, others = specific_words(title), specific_words(other_title)
    if not words or not words < others:
        return None
    return others - words


class UnspecifiedRule:
    name = "unspecified"

    def __init__(self, margin: float = 0.1) -> None:
        self.margin = margin

    @staticmethod
    def _documented_more(state: RulesState, other: CodeSuggestion, extra: frozenset[str] | None) -> bool:
        if not extra:
            return False
        words = state.context.words_for([other])
        return 2 * len(extra & words) >= len(extra)

    def __call__(self, state: RulesState) -> None:
        self._beside_finals(state)
        self._supported_candidates(state)

    def _beside_finals(self, state: RulesState) -> None:
        finals = list(state.diagnoses())
        titles = {id(c): state.tabular.title(c.code) for c in finals}
        moved: list[tuple[CodeSuggestion, list[CodeSuggestion]]] = []
        for suggestion in finals:
            title = titles[id(suggestion)]
            if not title or not is_unspecified(title):
                continue
            stem = compact(suggestion.code)[:3]
            better = [
                other
                for other in finals
                if other is not suggestion
                and compact(other.code)[:3] == stem
                and compact(other.code) != compact(suggestion.code)
                and titles[id(other)]
                and self._documented_more(state, other, extra_words(titles[id(other)], title))
            ]
            if not better and _UNSPECIFIED_ORGANISM.search(title):
                better = [
                    other
                    for other in finals
                    if other is not suggestion
                    and titles[id(other)]
                    and compact(other.code)[:1] == stem[:1]
                    and _names_organism(titles[id(other)], title)
                ]
            if better:
                moved.append((suggestion, better))
        for suggestion, better in moved:
            state.move_out(suggestion)
            best = max(better, key=lambda c: c.confidence)
            doubt = suggestion.confidence - best.confidence > self.margin
            state.fire(
                self.name,
                [suggestion, *better],
                f"{suggestion.code} is unspecified and {', '.join(c.code for c in better)} of the same category "
                "documents the condition more specifically: not coded together"
                + (f"; the ranker preferred {suggestion.code}, a coder confirms" if doubt else ""),
                reason=f"unspecified:{suggestion.code}" if doubt else None,
                warning={
                    suggestion.code: f"unspecified:{best.code}",
                    **{c.code: f"unspecified:{suggestion.code}" for c in better},
                },
            )

    def _supported_candidates(self, state: RulesState) -> None:
        """An unspecified final code gives way to the one candidate of its category whose further words
        its own present evidence documents in full ("cellulitis of left lower limb": L03.116 for
        L03.90; "acute on chronic systolic heart failure": I50.23 for I50.20). The candidate keeps its own
        (lower) confidence, so the encounter still meets the auto-accept thresholds or goes to a coder."""
        for suggestion in list(state.diagnoses()):
            title = state.tabular.title(suggestion.code)
            if not title or not is_unspecified(title):
                continue
            choice = self._documented_candidate(state, suggestion, title)
            if choice is None or state.final(choice.code) is not None:
                continue  # none, or already final beside it: the Excludes1 rule settles the pair
            state.move_out(suggestion)
            stored = state.add_final(choice)
            state.fire(
                self.name,
                [stored, suggestion],
                f"{suggestion.code} is unspecified; the note documents {stored.code} "
                f"({state.tabular.title(stored.code)}) of the same category: coded instead",
                warning={
                    suggestion.code: f"unspecified:{stored.code}",
                    stored.code: f"unspecified:{suggestion.code}",
                },
            )

    @staticmethod
    def _documented_candidate(
        state: RulesState, suggestion: CodeSuggestion, title: str
    ) -> CodeSuggestion | None:
        stem = compact(suggestion.code)[:3]
        scored: list[tuple[int, CodeSuggestion]] = []
        for candidate in state.candidates:
            if candidate.system != "ICD-10-CM" or compact(candidate.code)[:3] != stem:
                continue
            entry = state.tabular.entry(candidate.code)
            if entry is None or not entry.billable:
                continue
            extra = extra_words(entry.title, title)
            own = {
                w
                for e in candidate.evidence
                if state.context.evidence_is_present(e)
                for w in content_words(e.text)
            }
            if not extra or not extra <= own:
                continue
            if state.context.is_supported(candidate, entry.title):
                scored.append((len(extra), candidate))
        if not scored:
            return _documented_in_tabular(state, suggestion, title)
        scored.sort(key=lambda item: (-item[0], -item[1].confidence))
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            return None  # two codes documented alike: a coder decides
        return scored[0][1]


_PHRASE_END = re.compile(r"[.;:,\n]")
_MAX_CATEGORY = 400
"""Billable codes of a category searched for the documented code (categories with 7th characters hold
thousands: their codes come from the index walk and the 7th-character rule instead)."""


def _documented_in_tabular(
    state: RulesState, suggestion: CodeSuggestion, title: str
) -> CodeSuggestion | None:
    """The billable code of the same category that the phrase of the unspecified code's own present
    evidence documents in full, as the index would give it ("cellulitis of R lower leg": L03.115, not
    L03.90): its title says everything the unspecified title says and more, and every further word is in
    that phrase (side letters read as sides). None when no code, or two equally, qualify."""
    targets = _alternatives(state, suggestion.code)
    if not targets:
        return None
    words: set[str] = set()
    spans = []
    for evidence in suggestion.evidence:
        if not state.context.evidence_is_present(evidence, content_words(title)):
            continue
        phrase = _phrase(state, evidence)
        spans.append(evidence)
        words |= content_words(phrase) | note_sides(phrase)
        words |= {implied for side in note_sides(phrase) for implied in content_words(side)}
    if not words:
        return None
    scored: list[tuple[int, str]] = []
    for code in targets:
        if compact(code) == compact(suggestion.code):
            continue
        extra = extra_words(state.tabular.title(code), title)
        if extra and extra <= words:
            scored.append((len(extra), code))
    if not scored:
        return None
    scored.sort(reverse=True)
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        return None  # two codes documented alike: a coder decides
    entry = state.tabular.entry(scored[0][1])
    assert entry is not None
    return derived(
        entry.code,
        entry.title,
        suggestion.confidence,
        [e.model_copy() for e in spans],
        f"the note's phrase documents {entry.code} of {suggestion.code}'s category",
    )


def _alternatives(state: RulesState, code: str) -> tuple[str, ...]:
    """The codes an unspecified code gives way to: the billable codes of its category, and those its
    Excludes1 notes send elsewhere (R52 "localized pain, unspecified type - code to pain by site": R10.-,
    M25.5-, M79.6-, ...). Empty when the category is too large to search."""
    tabular = state.tabular
    found = list(tabular.targets(compact(code)[:3]))
    if len(found) > _MAX_CATEGORY:
        return ()
    for ref in tabular.excludes1_patterns(code):
        found.extend(tabular.expand(ref.pattern, limit=_MAX_CATEGORY))
    return tuple(dict.fromkeys(found))


def _phrase(state: RulesState, evidence: Evidence) -> str:
    """The phrase around an evidence span, up to the nearest punctuation each way (at most 60 characters
    each way): "cellulitis of R lower leg" for "cellulitis"."""
    text = state.document_text(evidence.document_id)
    if text is None:
        return evidence.text
    start, end = around(text, evidence.start, evidence.end, _PHRASE_END, window=60)
    return text[start:end]
