"""Code-first and use-additional-code instructions of the tabular, applied as written.

- code first: a code whose instruction names an etiology ("code first underlying disease, such as ...")
  is sequenced after that etiology when it is suggested; a supported etiology candidate is added; a
  manifestation code without one routes with "needs_etiology:CODE".
- use additional code: a code asking for another ("use additional code to identify stage of chronic
  kidney disease (N18.1-N18.6)") gets it from a supported candidate, a present mention's concept, or the
  one code whose title the note's mentions fully document; a mandatory instruction the note leaves unmet
  routes with "use_additional_code:CODE".
"""

from __future__ import annotations

from collections.abc import Iterator

from medcode.data.types import CodeSuggestion, Evidence, Mention
from medcode.model.rules.refs import CodePattern, any_match
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.tabular import NoteGroup
from medcode.model.rules.terms import content_words, title_support


def _supported_candidates(
    state: RulesState, patterns: tuple[CodePattern, ...], floor: float
) -> list[CodeSuggestion]:
    return sorted(
        (
            c
            for c in state.candidates
            if c.system == "ICD-10-CM"
            and c.confidence >= floor
            and any_match(patterns, c.code)
            and state.context.is_supported(c, state.tabular.title(c.code))
            and not any(
                w.startswith(("assertion:", "combination:", "code_set:", "excludes1:")) for w in c.warnings
            )
            and (entry := state.tabular.entry(c.code)) is not None
            and entry.billable
        ),
        key=lambda c: -c.confidence,
    )


def _final_note_groups(state: RulesState, kind: str) -> Iterator[tuple[CodeSuggestion, NoteGroup]]:
    """(code, instruction) for each `kind` note group of each diagnosis still final when its turn comes
    (lazily: what the caller did with the earlier ones counts)."""
    for code in list(state.diagnoses()):
        if not any(c is code for c in state.codes):
            continue
        for group in state.tabular.note_groups(code.code, kind):
            yield code, group


class CodeFirstRule:
    name = "code_first"

    def __init__(self, candidate_floor: float = 0.1) -> None:
        self.candidate_floor = candidate_floor

    def __call__(self, state: RulesState) -> None:
        for code, group in _final_note_groups(state, "code_first"):
            self._apply(state, code, group)

    def _apply(self, state: RulesState, code: CodeSuggestion, group: NoteGroup) -> None:
        etiologies = [c for c in state.diagnoses() if c is not code and any_match(group.patterns, c.code)]
        if etiologies:
            moved = [e for e in etiologies if state.place_before(e, code)]
            if moved:
                state.fire(
                    self.name,
                    [*moved, code],
                    f"sequenced {', '.join(e.code for e in moved)} before {code.code} (code first: {group.text})",
                    warning={
                        code.code: f"code_first:{moved[0].code}",
                        **{e.code: f"code_first:{code.code}" for e in moved},
                    },
                )
            return
        if not group.mandatory:
            return
        found = _supported_candidates(state, group.patterns, self.candidate_floor)
        if found:
            added = state.add_final(found[0], before=code)
            state.fire(
                self.name,
                [added, code],
                f"{code.code} is coded after its etiology; added the supported candidate {added.code} "
                f"(code first: {group.text})",
                warning={code.code: f"code_first:{added.code}", added.code: f"code_first:{code.code}"},
            )
            return
        state.fire(
            self.name,
            [code],
            f"{code.code} needs its etiology coded first ({group.text}); none is documented",
            reason=f"needs_etiology:{code.code}",
            warning={code.code: "code_first:missing"},
        )


class UseAdditionalRule:
    name = "use_additional"

    def __init__(self, candidate_floor: float = 0.1, discount: float = 0.9, max_expansion: int = 80) -> None:
        self.candidate_floor = candidate_floor
        self.discount = discount
        self.max_expansion = max_expansion

    def __call__(self, state: RulesState) -> None:
        for code, group in _final_note_groups(state, "use_additional"):
            self._apply(state, code, group)

    def _apply(self, state: RulesState, code: CodeSuggestion, group: NoteGroup) -> None:
        present = [c for c in state.diagnoses() if c is not code and any_match(group.patterns, c.code)]
        if present:
            return
        found = _supported_candidates(state, group.patterns, self.candidate_floor)
        if found:
            added = state.add_final(found[0])
            self._fire_added(state, code, added, group, "a supported candidate")
            return
        concept = self._from_concepts(state, group)
        if concept is None:
            concept = self._from_titles(state, group)
        if concept is not None:
            entry = state.tabular.entry(concept)
            assert entry is not None
            evidence = [
                _mention_evidence(m) for m in state.context.present if concept in m.concepts
            ] or self._title_evidence(state, entry.title)
            added = state.add_final(
                derived(
                    entry.code,
                    entry.title,
                    code.confidence * self.discount,
                    evidence,
                    f"additional code the tabular asks for with {code.code}",
                )
            )
            self._fire_added(state, code, added, group, "the note's mentions")
            return
        if group.mandatory:
            state.fire(
                self.name,
                [code],
                f"{code.code} asks for an additional code ({group.text}); the note documents none",
                reason=f"use_additional_code:{code.code}",
                warning={code.code: "use_additional:missing"},
            )

    def _fire_added(
        self, state: RulesState, code: CodeSuggestion, added: CodeSuggestion, group: NoteGroup, how: str
    ) -> None:
        state.fire(
            self.name,
            [code, added],
            f"added {added.code} ({added.description or state.tabular.title(added.code)}) from {how} "
            f"(use additional code: {group.text})",
            warning={code.code: f"use_additional:{added.code}", added.code: f"use_additional:{code.code}"},
        )

    def _from_concepts(self, state: RulesState, group: NoteGroup) -> str | None:
        codes = sorted(
            {
                entry.code
                for _, c in state.context.concept_mentions(group.patterns)
                if (entry := state.tabular.entry(c)) is not None and entry.billable
            }
        )
        return codes[0] if len(codes) == 1 else None

    def _from_titles(self, state: RulesState, group: NoteGroup) -> str | None:
        scored: list[tuple[int, str]] = []
        for pattern in group.patterns:
            for target in state.tabular.expand(pattern, self.max_expansion):
                title = state.tabular.title(target)
                best = 0
                for words in state.context.words_by_mention:
                    support = title_support(title, words)
                    if support.missing == 0 and not support.violated:
                        best = max(best, support.matched)
                if best:
                    scored.append((best, target))
        if not scored:
            return None
        scored.sort(reverse=True)
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            return None
        return scored[0][1]

    def _title_evidence(self, state: RulesState, title: str) -> list[Evidence]:
        wanted = content_words(title)
        return [_mention_evidence(m) for m in state.context.present if content_words(m.text) & wanted]


def _mention_evidence(mention: Mention) -> Evidence:
    return Evidence(document_id=mention.document_id, start=mention.start, end=mention.end, text=mention.text)
