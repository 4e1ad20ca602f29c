"""Laterality agreement: a code whose title names a side (right / left / bilateral) is not final when the
note documents, for that code's evidence, another side only ("osteoarthritis of the left knee" must not
leave M17.11, right knee, final).

The documented side comes from the present mentions under the code's evidence (their 'laterality'
attribute and words), else from the evidence text, else from the clause around the evidence. When the
tabular holds the same code for the documented side (the code of the same category whose title differs
only by the side: M17.11 -> M17.12) it replaces the code with the same confidence; otherwise the code
moves to the candidates and the encounter routes with "laterality:CODE". A bilateral condition keeps a
right or left code when the tabular has no bilateral code beside it (each side is coded, Guidelines
I.B.13).
"""

from __future__ import annotations

import re
from functools import lru_cache

from medcode.data.types import CodeSuggestion, Evidence
from medcode.model.rules.context import around
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.tabular import RuleTabular
from medcode.model.rules.terms import normalize_words

SIDES = ("right", "left", "bilateral")
_SIDE = re.compile(r"\b(right|left|bilateral)(?: (?:ear|eye)s?)?\b", re.IGNORECASE)
"""A side in a title, with the organ a paired-organ title names after it ("left ear" beside "bilateral")."""
_SHORT_SIDE = re.compile(r"(?<![\w/.])(?<!\d\s)(R|L|Rt|Lt)(?=\s+[A-Za-z]{2})")
"""A side letter written before what it qualifies ("L acute otitis media", "R lower leg"): in capitals only,
never after a number or a word ("1 L", "Vitamin D") and never alone."""
_SHORT_OF = {"r": "right", "rt": "right", "l": "left", "lt": "left"}
_CLAUSE_END = re.compile(r"[.;:\n]")
_MAX_SCAN = 400
"""Codes below an ancestor scanned for the other side's variant (categories with 7th characters hold
thousands; the variant is found at the nearest ancestor)."""


def sides_of(text: str) -> frozenset[str]:
    """Sides a text names ("both knees" -> bilateral, "lt hip" -> left)."""
    return frozenset(w for w in normalize_words(text) if w in SIDES)


def note_sides(text: str) -> frozenset[str]:
    """Sides a note's text names, with the side letters notes write before a condition or body part
    ("L acute otitis media" -> left; Guidelines I.B.13 codes the documented side, never bilateral for one)."""
    return sides_of(text) | frozenset(_SHORT_OF[m.group(1).lower()] for m in _SHORT_SIDE.finditer(text))


def _side_key(title: str) -> str:
    return _SIDE.sub("<side>", title.lower())


class LateralityRule:
    name = "laterality"

    def __init__(self) -> None:
        self._variants: dict[tuple[int, str], dict[str, str]] = {}

    def __call__(self, state: RulesState) -> None:
        for suggestion in list(state.diagnoses()):
            if not any(c is suggestion for c in state.codes):
                continue
            title = state.tabular.title(suggestion.code)
            own = sides_of(title)
            if not own or not suggestion.evidence:
                continue
            documented = self.documented_sides(state, suggestion)
            if not documented or own & documented:
                continue
            if "bilateral" in documented and "bilateral" not in own:
                # a bilateral condition takes the bilateral code where the tabular has one beside this
                # code, else a code for each side (Guidelines I.B.13): this side's code stays
                variant = self.variants(state.tabular, suggestion.code).get("bilateral")
                if variant is None:
                    continue
                self._resolve(state, suggestion, own, frozenset({"bilateral"}))
                continue
            self._resolve(state, suggestion, own, documented)

    # what the note says ------------------------------------------------------------------------------
    @staticmethod
    def documented_sides(state: RulesState, suggestion: CodeSuggestion) -> frozenset[str]:
        """Sides documented for the code: its mentions', else its evidence text's, else its clause's."""
        mentions = state.context.mentions_of(suggestion)
        found: set[str] = set()
        for mention in mentions:
            found |= sides_of(mention.attributes.get("laterality", ""))
            found |= note_sides(mention.text)
        if found:
            return _with_bilateral(found)
        texts = [_evidence_text(state, e) for e in suggestion.evidence]
        found = {side for text in texts for side in note_sides(text)}
        if found:
            return _with_bilateral(found)
        return _with_bilateral({side for e in suggestion.evidence for side in note_sides(_clause(state, e))})

    # the change --------------------------------------------------------------------------------------
    def _resolve(
        self, state: RulesState, suggestion: CodeSuggestion, own: frozenset[str], documented: frozenset[str]
    ) -> None:
        variant = None
        if len(documented) == 1:
            (side,) = documented
            variant = self.variants(state.tabular, suggestion.code).get(side)
        said = "/".join(sorted(documented))
        if variant is None:
            state.move_out(suggestion)
            state.fire(
                self.name,
                [suggestion],
                f"{suggestion.code} is for the {'/'.join(sorted(own))} side; the note documents {said}, and "
                "the tabular has no such code beside it: a coder decides",
                reason=f"laterality:{suggestion.code}",
                warning={suggestion.code: "laterality:conflict"},
            )
            return
        entry = state.tabular.entry(variant)
        assert entry is not None
        stored = state.replace(
            suggestion,
            derived(
                entry.code,
                entry.title,
                suggestion.confidence,
                list(suggestion.evidence),
                f"the {said} side documented in the note (in place of {suggestion.code})",
            ),
            keep_ranker_confidence=False,
        )
        state.fire(
            self.name,
            [stored, suggestion],
            f"{suggestion.code} is for the {'/'.join(sorted(own))} side; the note documents {said}: "
            f"replaced by {entry.code} ({entry.title})",
            warning={
                stored.code: f"laterality:{suggestion.code}",
                suggestion.code: f"laterality:{entry.code}",
            },
        )

    def variants(self, tabular: RuleTabular, code: str) -> dict[str, str]:
        """The codes that differ from `code` only by the side named in the title, by side."""
        key = (id(tabular), code)
        if key not in self._variants:
            self._variants[key] = _variants(tabular, code)
        return self._variants[key]


def _variants(tabular: RuleTabular, code: str) -> dict[str, str]:
    entry = tabular.entry(code)
    if entry is None:
        return {}
    wanted = _side_key(entry.title)
    for ancestor in tabular.ancestors(entry.code):
        found: dict[str, str] = {}
        below = _billable_below(tabular, ancestor)
        if not below:
            continue
        for other in below:
            if other == entry.code:
                continue
            title = tabular.title(other)
            if _side_key(title) != wanted:
                continue
            for side in sides_of(title):
                found.setdefault(side, other)
        if found:
            return found
    return {}


@lru_cache(maxsize=4096)
def _billable_below(tabular: RuleTabular, ancestor: str) -> tuple[str, ...]:
    """Billable codes below an ancestor; () when there are more than `_MAX_SCAN`."""
    out: list[str] = []
    stack = [ancestor]
    while stack:
        current = stack.pop()
        for child in tabular.icd.children(current):
            item = tabular.icd[child]
            if item.billable:
                out.append(item.code)
            stack.append(child)
            if len(out) > _MAX_SCAN:
                return ()
    return tuple(out)


def _with_bilateral(sides: set[str]) -> frozenset[str]:
    """Right and left both documented stand for bilateral too."""
    return frozenset(sides | {"bilateral"} if {"right", "left"} <= sides else sides)


def _evidence_text(state: RulesState, evidence: Evidence) -> str:
    if evidence.text:
        return evidence.text
    text = state.document_text(evidence.document_id)
    return text[evidence.start : evidence.end] if text is not None else ""


def _clause(state: RulesState, evidence: Evidence) -> str:
    """The clause around an evidence span (up to the sentence or list punctuation, at most 80 characters
    each way): "Unilateral primary osteoarthritis of the left knee"."""
    text = state.document_text(evidence.document_id)
    if text is None:
        return ""
    start, end = around(text, evidence.start, evidence.end, _CLAUSE_END, window=80)
    return text[start:end]
