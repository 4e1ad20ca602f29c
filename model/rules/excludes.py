"""Excludes1: two codes in an Excludes1 relation are never both suggested.

The relation comes from the tabular's Excludes1 notes of each code, its ancestors, block and chapter,
read as patterns (categories, "E11.2-", ranges, "E08-E13 with .42"); a note linking a concept to another
disease ("somnolence, stupor and coma in diabetes (E08-E13)") excludes only the codes of the range whose
titles document that concept. The better-supported code stays
(higher confidence, then the more specific code, then more evidence, then earlier in sequence); the other moves to the candidates.
When their confidences are within `margin`, the encounter routes with
"rule_conflict:excludes1:KEPT|MOVED" so a coder confirms the choice.
"""

from __future__ import annotations

from medcode.data.types import CodeSuggestion
from medcode.model.rules.state import RulesState
from medcode.model.rules.tabular import RuleTabular


def excludes1_conflict(tabular: RuleTabular, a: str, b: str) -> bool:
    """Whether codes a and b are in an Excludes1 relation (either direction, hierarchically)."""
    if tabular.is_ancestor(a, b) or tabular.is_ancestor(b, a) or a == b:
        return False
    return tabular.excludes(a, b) or tabular.excludes(b, a)


class Excludes1Rule:
    name = "excludes1"

    def __init__(self, margin: float = 0.1) -> None:
        self.margin = margin

    @staticmethod
    def _vagueness(state: RulesState, suggestion: CodeSuggestion) -> tuple[int, int]:
        """Ties go to the more specific code: not 'unspecified', deeper in the hierarchy."""
        entry = state.tabular.entry(suggestion.code)
        if entry is None:
            return (1, 0)
        return (int("unspecified" in entry.title.lower()), -entry.depth)

    def __call__(self, state: RulesState) -> None:
        diagnoses = state.diagnoses()
        order = {id(c): i for i, c in enumerate(diagnoses)}
        ranked = sorted(
            diagnoses,
            key=lambda c: (-c.confidence, *self._vagueness(state, c), -len(c.evidence), order[id(c)]),
        )
        kept: list[CodeSuggestion] = []
        for suggestion in ranked:
            rival = next(
                (k for k in kept if excludes1_conflict(state.tabular, k.code, suggestion.code)), None
            )
            if rival is None:
                kept.append(suggestion)
                continue
            state.move_out(suggestion)
            close = rival.confidence - suggestion.confidence < self.margin
            message = (
                f"Excludes1: {rival.code} and {suggestion.code} are not coded together; kept {rival.code} "
                f"(confidence {rival.confidence:.2f} vs {suggestion.confidence:.2f})"
            )
            state.fire(
                self.name,
                [rival, suggestion],
                message + ("; too close to call" if close else ""),
                reason=f"rule_conflict:excludes1:{rival.code}|{suggestion.code}" if close else None,
                warning={
                    rival.code: f"excludes1:{suggestion.code}",
                    suggestion.code: f"excludes1:{rival.code}",
                },
            )
