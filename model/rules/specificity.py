"""Specificity: a non-billable header code (category or subcategory) is never a final code.

It is replaced by the billable code below it that the note supports: a supported candidate below it, a
present mention whose lexicon concept is below it, or the one code whose title words (beyond the
header's own) the note's present mentions and the header's evidence cover best. When none stands out the
header moves to the candidates with the reason "unspecified:CODE" (its default "unspecified" child, if
any, is offered as a candidate).
"""

from __future__ import annotations

from medcode.data.types import CodeSuggestion
from medcode.model.rules.laterality import LateralityRule, sides_of
from medcode.model.rules.refs import compact
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.terms import title_support, title_terms


class SpecificityRule:
    name = "specificity"

    def __init__(
        self, candidate_floor: float = 0.05, discount: float = 0.9, min_coverage: float = 0.5
    ) -> None:
        self.candidate_floor = candidate_floor
        self.discount = discount
        self.min_coverage = min_coverage

    def __call__(self, state: RulesState) -> None:
        for header in list(state.diagnoses()):
            if not any(c is header for c in state.codes):
                continue  # already replaced while resolving another header
            entry = state.tabular.entry(header.code)
            if entry is None or not state.tabular.is_header(entry):
                continue
            self._resolve(state, header, entry.code)

    def _resolve(self, state: RulesState, header: CodeSuggestion, code: str) -> None:
        tabular = state.tabular
        targets = tabular.targets(code)
        target_keys = {compact(t): t for t in targets}
        # 1. a more specific code below it is already suggested: the header is redundant
        below = [
            c for c in state.diagnoses() if c is not header and compact(c.code).startswith(compact(code))
        ]
        if below:
            state.move_out(header)
            state.fire(
                self.name,
                [header, *below],
                f"{code} is a header; {', '.join(c.code for c in below)} below it is already suggested",
                warning={header.code: f"specificity:{below[0].code}"},
            )
            return
        # 2. a supported candidate below it
        supported = [
            c
            for c in state.candidates
            if c.system == "ICD-10-CM"
            and compact(c.code) in target_keys
            and c.confidence >= self.candidate_floor
            and state.context.is_supported(c, state.tabular.title(c.code))
        ]
        # a candidate naming a side the note does not document is no support ("L otitis media" is not
        # the bilateral code; Guidelines I.B.13)
        documented = LateralityRule.documented_sides(state, header)
        supported = [c for c in supported if sides_of(state.tabular.title(c.code)) <= documented]
        if supported:
            best = max(supported, key=lambda c: c.confidence)
            self._replace(state, header, best.code, "a supported candidate", best.confidence)
            return
        # 3. a present mention whose concept is below it
        concepts = sorted(
            {
                target_keys[compact(c)]
                for m in state.context.present
                for c in m.concepts
                if compact(c) in target_keys
            }
        )
        if len(concepts) == 1:
            self._replace(state, header, concepts[0], "a present mention's concept", None)
            return
        # 4. the code whose title the note supports best
        chosen = self._by_title(state, header, code, targets)
        if chosen is not None:
            self._replace(state, header, chosen, "the note's words", None)
            return
        self._unresolved(state, header, code, targets)

    def _by_title(
        self, state: RulesState, header: CodeSuggestion, code: str, targets: tuple[str, ...]
    ) -> str | None:
        words = state.context.words_for([header])
        given = title_terms(state.tabular.title(code)).required
        scored: list[tuple[int, int, str]] = []
        for target in targets:
            support = title_support(state.tabular.title(target), words, given)
            if support.violated or support.matched == 0 or support.coverage < self.min_coverage:
                continue
            scored.append((support.matched, -support.missing, target))
        if not scored:
            return None
        scored.sort(reverse=True)
        if len(scored) > 1 and scored[0][:2] == scored[1][:2]:
            return None  # two codes equally supported: a coder decides
        return scored[0][2]

    def _replace(
        self, state: RulesState, header: CodeSuggestion, target: str, how: str, own: float | None
    ) -> None:
        entry = state.tabular.entry(target)
        assert entry is not None
        confidence = max(header.confidence * self.discount, own or 0.0)
        replacement = derived(
            entry.code,
            entry.title,
            confidence,
            list(header.evidence),
            f"more specific code below {header.code}, chosen from {how}",
        )
        stored = state.replace(header, replacement)
        state.fire(
            self.name,
            [stored, header],
            f"{header.code} is not billable; replaced by {entry.code} ({entry.title}), chosen from {how}",
            warning={stored.code: f"specificity:{header.code}", header.code: f"specificity:{entry.code}"},
        )

    def _unresolved(
        self, state: RulesState, header: CodeSuggestion, code: str, targets: tuple[str, ...]
    ) -> None:
        state.move_out(header)
        given = title_terms(state.tabular.title(code)).required
        defaults = sorted(
            (len(title_terms(state.tabular.title(t)).required - given), t)
            for t in targets
            if "unspecified" in state.tabular.title(t).lower()
        )
        offered = ""
        if defaults and defaults[0][0] == 0:
            entry = state.tabular.entry(defaults[0][1])
            assert entry is not None
            state.add_candidate(
                derived(
                    entry.code,
                    entry.title,
                    header.confidence * self.discount * self.discount,
                    list(header.evidence),
                    f"default code below {header.code}; the note documents nothing more specific",
                )
            )
            offered = f"; {entry.code} offered as a candidate"
        state.fire(
            self.name,
            [header],
            f"{header.code} is not billable and the note supports no single code below it{offered}",
            reason=f"unspecified:{header.code}",
            warning={header.code: "specificity:unspecified"},
        )
