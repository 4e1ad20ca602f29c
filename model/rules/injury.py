"""Injuries documented with their encounter are coded (Guidelines I.C.19.a): the ranker's best injury code
for each injury the note names moves into the suggested codes when the note says which encounter this is.

A ranker trained on another corpus's habits can rank the right injury code first for a mention ("R distal
radius fx" -> S52.501 by the index walk) and still score it under its threshold. A US coder codes every
current injury the note documents, with the 7th character of the encounter (initial / subsequent /
sequela). So, per evidence span: the highest-ranked S00-S99 candidate that lacks only an encounter 7th
character is suggested when

- the note documents the encounter episode for it, or the encounter is an emergency department one
  (active treatment; the 7th-character rule then completes it),
- its evidence falls on a present, current mention (not negated, family, hypothetical or history),
- no injury code is suggested on that span already, and its confidence reaches `floor`,
- the code-set knowledge vouches for it: its rationale names the Alphabetic Index walk or the lexicon
  (a code found only by name similarity, "Unspecified fracture of wrist" for "tibial shaft fx", is not
  promoted).

An unspecified-site injury code (T14.-) on the same span gives way to it (the site is documented). The
rule keeps the ranker's confidence: it decides what is suggested, not how sure the model is.
"""

from __future__ import annotations

from medcode.data.types import CodeSuggestion, Evidence
from medcode.model.rules.context import overlaps
from medcode.model.rules.refs import compact
from medcode.model.rules.seventh import documented_episodes
from medcode.model.rules.state import RulesState

ICD = "ICD-10-CM"
_EPISODE_WORDS = ("initial", "subsequent", "sequela")
UNSPECIFIED_SITE = "T14"
VOUCHED = ("index_walk match", "alphabetic index walk", "lexicon match")
"""How the models' rationales name a candidate found by the index walk or the lexicon (the trained model:
"<source> match on ...", the built-in model: "alphabetic index walk on ...", both "lexicon match on ..."; tests/model/test_injuries.py holds them to the sources' names)."""


def _spans_overlap(a: Evidence, b: Evidence) -> bool:
    return a.document_id == b.document_id and a.start < b.end and b.start < a.end


class InjuryRule:
    name = "injury"

    def __init__(self, floor: float = 0.05) -> None:
        self.floor = floor

    def __call__(self, state: RulesState) -> None:
        taken: list[Evidence] = [
            e for c in state.diagnoses() if self._is_injury(state, c.code) for e in c.evidence
        ]
        for candidate in sorted(state.candidates, key=lambda c: -c.confidence):
            if candidate.system != ICD or candidate.confidence < self.floor or not candidate.evidence:
                continue
            if not candidate.rationale.startswith(VOUCHED):
                continue
            if not self._is_injury(state, candidate.code) or not self._current(state, candidate):
                continue
            if any(_spans_overlap(e, t) for e in candidate.evidence for t in taken):
                continue
            if not documented_episodes(state, candidate):
                continue
            unspecified = [
                c
                for c in state.diagnoses()
                if compact(c.code).startswith(UNSPECIFIED_SITE)
                and any(_spans_overlap(e, x) for e in c.evidence for x in candidate.evidence)
            ]
            for other in unspecified:
                state.move_out(other)
            added = state.add_final(candidate)
            taken.extend(candidate.evidence)
            state.fire(
                self.name,
                [added, *unspecified],
                f"the note documents this injury and its encounter: {added.code} is coded (Guidelines"
                " I.C.19.a)"
                + (
                    f"; the unspecified-site code {', '.join(c.code for c in unspecified)} gives way to it"
                    if unspecified
                    else ""
                ),
            )

    @staticmethod
    def _is_injury(state: RulesState, code: str) -> bool:
        """An injury code by body region (S00-S99) complete but for its encounter 7th character."""
        if not compact(code).startswith("S"):
            return False
        entry = state.tabular.entry(code)
        if entry is None:
            return False
        meanings = " ".join(dict(entry.seventh_chars).values()).lower()
        return any(word in meanings for word in _EPISODE_WORDS) and (
            state.tabular.needs_seventh(entry) or len(compact(code)) == 7
        )

    @staticmethod
    def _current(state: RulesState, suggestion: CodeSuggestion) -> bool:
        """The evidence names a present mention that is not history (a pipeline mention under it, if any)."""
        under = [m for m in state.context.mentions if any(overlaps(e, m) for e in suggestion.evidence)]
        if not under:
            return True
        return any(m.assertion.is_present and not m.assertion.historical for m in under)
