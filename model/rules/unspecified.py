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

from medcode.data.types import CodeSuggestion
from medcode.model.rules.refs import compact
from medcode.model.rules.state import RulesState
from medcode.model.rules.terms import content_words

_WHETHER = re.compile(r",?\s*unspecified (?:whether|as to)\b[^,]*", re.IGNORECASE)
_NONESSENTIAL = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


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
            if choice is None:
                continue
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
            return None
        scored.sort(key=lambda item: (-item[0], -item[1].confidence))
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            return None  # two codes documented alike: a coder decides
        return scored[0][1]
