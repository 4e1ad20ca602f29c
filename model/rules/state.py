"""The rules' working state for one encounter, and what the step returns.

Rules never delete a code: a code taken out of the suggested set moves to the candidates (keeping its
confidence, so ranking metrics keep it in place), a code the ranker scored keeps the ranker's confidence
when a rule makes it final or offers it again (the rules choose codes; they do not re-rank the ranker's
list), and every change is a `RuleFiring` written into the
rationale and warnings of the codes it touched, plus a routing reason where it leaves doubt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from medcode.data.types import CodeSuggestion, Encounter, Evidence, Mention
from medcode.model.rules.context import NoteContext, around
from medcode.model.rules.refs import compact
from medcode.model.rules.tabular import RuleTabular
from medcode.model.rules.terms import content_words


@dataclass(frozen=True)
class RuleFiring:
    """One rule acting on one encounter: which rule, the codes it touched, what it did and why."""

    rule: str
    codes: tuple[str, ...]
    message: str
    reason: str | None = None
    """The routing reason it added, if it left doubt for a coder."""

    def to_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "codes": list(self.codes), "message": self.message, "reason": self.reason}


@dataclass
class RulesOutcome:
    """The codes after the rules, the candidates (codes moved out land here), reasons and firings."""

    codes: list[CodeSuggestion]
    candidates: list[CodeSuggestion]
    reasons: list[str]
    firings: list[RuleFiring]

    def firing_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for firing in self.firings:
            counts[firing.rule] = counts.get(firing.rule, 0) + 1
        return counts


@dataclass
class RulesState:
    """Mutable state the rules pass along: suggested codes (in sequence order) and candidates."""

    encounter: Encounter
    context: NoteContext
    tabular: RuleTabular
    codes: list[CodeSuggestion]
    candidates: list[CodeSuggestion]
    reasons: list[str] = field(default_factory=list)
    firings: list[RuleFiring] = field(default_factory=list)
    ranker: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    """The ranker's confidence and rank of every code it scored (codes and candidates), by state key."""

    @classmethod
    def start(
        cls,
        encounter: Encounter,
        mentions: list[Mention],
        codes: list[CodeSuggestion],
        candidates: list[CodeSuggestion],
        tabular: RuleTabular,
    ) -> RulesState:
        own_codes = [c.model_copy(deep=True) for c in codes]
        own_candidates = [c.model_copy(deep=True) for c in candidates]
        state = cls(
            encounter=encounter,
            context=NoteContext(encounter=encounter, mentions=list(mentions)),
            tabular=tabular,
            codes=[],
            candidates=[],
        )
        for suggestion in [*own_codes, *own_candidates]:
            key = state.key(suggestion)
            if key not in state.ranker or suggestion.confidence > state.ranker[key][0]:
                state.ranker[key] = (suggestion.confidence, suggestion.rank)
        state.codes = state._unique(own_codes)
        final = {state.key(c) for c in state.codes}
        state.candidates = state._unique([s for s in own_candidates if state.key(s) not in final])
        return state

    def outcome(self) -> RulesOutcome:
        return RulesOutcome(
            codes=list(self.codes),
            candidates=list(self.candidates),
            reasons=list(self.reasons),
            firings=list(self.firings),
        )

    # lookup ---------------------------------------------------------------------------------------------
    @staticmethod
    def key(suggestion: CodeSuggestion) -> str:
        return f"{suggestion.system}:{compact(suggestion.code)}"

    @staticmethod
    def icd_key(code: str) -> str:
        return f"ICD-10-CM:{compact(code)}"

    def document_text(self, document_id: str) -> str | None:
        """The text of one of the encounter's documents (None when it has no document of that id)."""
        try:
            return self.encounter.document(document_id).text
        except KeyError:
            return None

    def clause_words(self, spans: Iterable[Mention | Evidence]) -> frozenset[str]:
        """Content words of the clause around each span (`context.around`): "stroke without residual
        deficits", "gestational diabetes, diet controlled"."""
        words: set[str] = set()
        for span in spans:
            text = self.document_text(span.document_id)
            if text is not None:
                start, end = around(text, span.start, span.end)
                words |= content_words(text[start:end])
        return frozenset(words)

    def diagnoses(self) -> list[CodeSuggestion]:
        return [c for c in self.codes if c.system == "ICD-10-CM"]

    def final(self, code: str, system: str = "ICD-10-CM") -> CodeSuggestion | None:
        wanted = f"{system}:{compact(code)}"
        return next((c for c in self.codes if self.key(c) == wanted), None)

    def candidate(self, code: str, system: str = "ICD-10-CM") -> CodeSuggestion | None:
        wanted = f"{system}:{compact(code)}"
        return next((c for c in self.candidates if self.key(c) == wanted), None)

    # changes --------------------------------------------------------------------------------------------
    def _add_unique(self, items: list[CodeSuggestion], suggestion: CodeSuggestion) -> None:
        wanted = self.key(suggestion)
        for index, existing in enumerate(items):
            if self.key(existing) == wanted:
                if suggestion.confidence > existing.confidence:
                    items[index] = self._ranked(_merged(suggestion, existing))
                else:
                    items[index] = _merged(existing, suggestion)
                return
        items.append(self._ranked(suggestion))

    def _unique(self, suggestions: list[CodeSuggestion]) -> list[CodeSuggestion]:
        """One entry per code, as `_add_unique` one suggestion after another would leave them (one pass)."""
        out: dict[str, CodeSuggestion] = {}
        for suggestion in suggestions:
            wanted = self.key(suggestion)
            existing = out.get(wanted)
            if existing is None:
                out[wanted] = self._ranked(suggestion)
            elif suggestion.confidence > existing.confidence:
                out[wanted] = self._ranked(_merged(suggestion, existing))
            else:
                out[wanted] = _merged(existing, suggestion)
        return list(out.values())

    def _ranked(self, suggestion: CodeSuggestion) -> CodeSuggestion:
        """The suggestion with the ranker's confidence and rank, when the ranker scored that code."""
        scored = self.ranker.get(self.key(suggestion))
        if scored is not None:
            suggestion.confidence, rank = scored
            suggestion.set_rank(rank)
        return suggestion

    def move_out(self, suggestion: CodeSuggestion) -> None:
        """Take a code out of the suggested set into the candidates (its confidence is kept)."""
        wanted = self.key(suggestion)
        self.codes = [c for c in self.codes if self.key(c) != wanted]
        self._add_unique(self.candidates, suggestion)

    def add_final(
        self,
        suggestion: CodeSuggestion,
        before: CodeSuggestion | None = None,
        *,
        keep_ranker_confidence: bool = True,
    ) -> CodeSuggestion:
        """Put a code into the suggested set (from the candidates if it is there), optionally just before
        another code; returns the code as stored. A code the ranker scored keeps the ranker's confidence
        unless `keep_ranker_confidence` is False (the note settles it: the documented side)."""
        wanted = self.key(suggestion)
        existing = next((c for c in self.candidates if self.key(c) == wanted), None)
        if existing is not None:
            self.candidates = [c for c in self.candidates if self.key(c) != wanted]
            suggestion = (
                _merged(suggestion, existing)
                if suggestion.confidence >= existing.confidence
                else _merged(existing, suggestion)
            )
        current = next((c for c in self.codes if self.key(c) == wanted), None)
        if current is not None:
            return current
        if keep_ranker_confidence:
            suggestion = self._ranked(suggestion)
        at = _position(self.codes, before) if before is not None else None
        if at is not None:
            self.codes.insert(at, suggestion)
        else:
            self.codes.append(suggestion)
        return suggestion

    def replace(
        self, old: CodeSuggestion, new: CodeSuggestion, *, keep_ranker_confidence: bool = True
    ) -> CodeSuggestion:
        """Put `new` in the suggested codes at `old`'s sequence position and move `old` to the candidates;
        returns `new` as stored."""
        position = _position(self.codes, old)
        self.move_out(old)
        stored = self.add_final(new, keep_ranker_confidence=keep_ranker_confidence)
        if position is not None:
            self.move_to(stored, position)
        return stored

    def move_to(self, suggestion: CodeSuggestion, position: int) -> None:
        """Put a suggested code at a sequence position (a replacement takes its source's place)."""
        at = _position(self.codes, suggestion)
        if at is not None:
            self.codes.pop(at)
            self.codes.insert(min(position, len(self.codes)), suggestion)

    def add_candidate(self, suggestion: CodeSuggestion) -> None:
        if self.final(suggestion.code, suggestion.system) is None:
            self._add_unique(self.candidates, suggestion)

    def place_before(self, first: CodeSuggestion, second: CodeSuggestion) -> bool:
        """Sequence `first` before `second` in the suggested codes; True when the order changed."""
        i, j = _position(self.codes, first), _position(self.codes, second)
        if i is None or j is None or i < j:
            return False
        self.codes.pop(i)
        self.codes.insert(j, first)
        return True

    def add_reason(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def fire(
        self,
        rule: str,
        touched: list[CodeSuggestion],
        message: str,
        *,
        reason: str | None = None,
        warning: dict[str, str] | None = None,
    ) -> None:
        """Record a firing: reason (if any) for routing, message in each touched code's rationale and
        `warning[code]` (default '<rule>') in its warnings."""
        firing = RuleFiring(rule=rule, codes=tuple(c.code for c in touched), message=message, reason=reason)
        self.firings.append(firing)
        if reason:
            self.add_reason(reason)
        for suggestion in touched:
            note = f"[rule {rule}] {message}"
            if note not in suggestion.rationale:
                suggestion.rationale = f"{suggestion.rationale}; {note}" if suggestion.rationale else note
            flag = (warning or {}).get(suggestion.code, rule)
            if flag not in suggestion.warnings:
                suggestion.warnings.append(flag)


def derived(
    code: str,
    description: str,
    confidence: float,
    evidence: list[Evidence],
    rationale: str,
    system: str = "ICD-10-CM",
) -> CodeSuggestion:
    """A code the rules add (a billable child, a combination code, a 7th-character completion)."""
    seen: set[tuple[str, int, int]] = set()
    unique: list[Evidence] = []
    for item in evidence:
        spot = (item.document_id, item.start, item.end)
        if spot not in seen:
            seen.add(spot)
            unique.append(item.model_copy())
    return CodeSuggestion(
        system=system,  # type: ignore[arg-type]
        code=code,
        description=description,
        confidence=round(max(0.0, min(1.0, confidence)), 6),
        evidence=unique,
        rationale=rationale,
    )


def _position(items: list[CodeSuggestion], item: CodeSuggestion) -> int | None:
    """Index of this very object in the list (identity, not equality)."""
    return next((i for i, c in enumerate(items) if c is item), None)


def _merged(keep: CodeSuggestion, other: CodeSuggestion) -> CodeSuggestion:
    """`keep` with the evidence, rationale and warnings of `other` added."""
    spots = {(e.document_id, e.start, e.end) for e in keep.evidence}
    for item in other.evidence:
        if (item.document_id, item.start, item.end) not in spots:
            keep.evidence.append(item)
            spots.add((item.document_id, item.start, item.end))
    if other.rationale and other.rationale not in keep.rationale:
        keep.rationale = f"{keep.rationale}; {other.rationale}" if keep.rationale else other.rationale
    for flag in other.warnings:
        if flag not in keep.warnings:
            keep.warnings.append(flag)
    if not keep.description and other.description:
        keep.description = other.description
    return keep
