"""Combination codes: when the note documents every condition of a combination, the combination code is
suggested and the separate codes it replaces move to the candidates (resources/combinations.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medcode.data.types import CodeSuggestion, Evidence
from medcode.model.rules.refs import CodePattern, any_match, parse_patterns
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState, derived

_MOVED_OUT = ("combination:", "assertion:", "code_set:")
"""Warnings of codes the rules took out: such a candidate no longer documents a condition."""


@dataclass(frozen=True)
class Alternative:
    code: str
    when_any: tuple[CodePattern, ...] = ()


@dataclass(frozen=True)
class Combination:
    name: str
    guideline: str
    roles: dict[str, tuple[CodePattern, ...]]
    drop: dict[str, tuple[CodePattern, ...]]
    result: tuple[Alternative, ...]


def _patterns(items: list[str]) -> tuple[CodePattern, ...]:
    out: list[CodePattern] = []
    for item in items:
        out.extend(parse_patterns(item))
    return tuple(out)


def _substitute(value: Any, name: str, member: str) -> Any:
    if isinstance(value, str):
        return value.replace("{" + name + "}", member)
    if isinstance(value, list):
        return [_substitute(v, name, member) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, name, member) for k, v in value.items()}
    return value


def load_combinations(data: dict[str, Any] | None = None) -> list[Combination]:
    """The combination patterns, with 'for_each' families expanded ({DM} -> E08, E09, ...)."""
    data = data if data is not None else load_resource("combinations.json")
    families: dict[str, list[str]] = data.get("families", {})
    out: list[Combination] = []
    for raw in data["combinations"]:
        family = raw.get("for_each")
        members = families[family] if family else [None]
        for member in members:
            item = _substitute(raw, family, member) if family and member else raw
            out.append(
                Combination(
                    name=item["name"],
                    guideline=item.get("guideline", ""),
                    roles={role: _patterns(pats) for role, pats in item["requires"].items()},
                    drop={role: _patterns(pats) for role, pats in item.get("drop", {}).items()},
                    result=tuple(
                        Alternative(code=alt["code"], when_any=_patterns(alt.get("when_any", [])))
                        for alt in item.get("result", [])
                    ),
                )
            )
    return out


@dataclass
class _Support:
    """What documents one role: suggested codes, earlier-suggested codes, candidates, mention concepts."""

    codes: list[CodeSuggestion]
    concepts: list[str]
    final: bool

    @property
    def evidence(self) -> list[Evidence]:
        return [e for c in self.codes for e in c.evidence]


class CombinationRule:
    """Prefer the combination code when the note documents both conditions (Guidelines I.A.15 'with',
    I.C.4.a diabetes, I.C.9.a hypertension), dropping the separate codes it replaces.

    A role is documented by a suggested code or a present mention's lexicon concept; candidates below the
    threshold document a role only when `candidate_floor` is set (off by default: a ranker's low-scored
    alternatives are too noisy to build a combination code on)."""

    name = "combination"

    def __init__(
        self,
        combinations: list[Combination] | None = None,
        candidate_floor: float | None = None,
        discount: float = 0.9,
    ) -> None:
        self.combinations = combinations if combinations is not None else load_combinations()
        self.candidate_floor = candidate_floor
        self.discount = discount

    def __call__(self, state: RulesState) -> None:
        base: dict[str, float] = {}
        """Confidence a combination code was derived from (before the discount), by state key."""
        for _ in range(4):  # chains (I10 + I50 -> I11.0, then I11.0 + N18 -> I13.x) settle in a few passes
            if not any(self._apply(state, combination, base) for combination in self.combinations):
                return

    # -----------------------------------------------------------------------------------------------
    def _support(self, state: RulesState, patterns: tuple[CodePattern, ...]) -> _Support | None:
        finals = [c for c in state.diagnoses() if any_match(patterns, c.code)]
        if finals:
            return _Support(codes=finals, concepts=[], final=True)
        floor = self.candidate_floor
        candidates = [
            c
            for c in state.candidates
            if floor is not None
            and c.system == "ICD-10-CM"
            and c.confidence >= floor
            and any_match(patterns, c.code)
            and state.context.is_supported(c, state.tabular.title(c.code))
            and not any(w.startswith(_MOVED_OUT) for w in c.warnings)
        ]
        if candidates:
            return _Support(codes=candidates, concepts=[], final=False)
        concepts = [code for _, code in state.context.concept_mentions(patterns)]
        if concepts:
            return _Support(codes=[], concepts=concepts, final=False)
        return None

    def _documented(self, state: RulesState, patterns: tuple[CodePattern, ...]) -> bool:
        return self._support(state, patterns) is not None

    def _apply(self, state: RulesState, combination: Combination, base: dict[str, float]) -> bool:
        supports: dict[str, _Support] = {}
        for role, patterns in combination.roles.items():
            support = self._support(state, patterns)
            if support is None:
                return False
            supports[role] = support
        if not any(s.final for s in supports.values()):
            return False
        target = self._result(state, combination)
        if combination.result and target is None:
            return False
        changed: list[CodeSuggestion] = []
        added: CodeSuggestion | None = None
        if target is not None and self._superseded(state, target):
            return False  # an earlier combination replaced this code by one still coded (I11.0 by I13.0)
        if target is not None and state.final(target) is None:
            entry = state.tabular.entry(target)
            assert entry is not None
            confidences = [
                max(base.get(state.key(c), c.confidence) for c in s.codes)
                for s in supports.values()
                if s.codes
            ]
            roles = ", ".join(
                f"{role}: {'/'.join([c.code for c in s.codes] or s.concepts)}" for role, s in supports.items()
            )
            added = state.add_final(
                derived(
                    entry.code,
                    entry.title,
                    min(confidences, default=0.5) * self.discount,
                    [e for s in supports.values() for e in s.evidence],
                    f"combination code ({combination.guideline}) for {roles}",
                )
            )
            changed.append(added)
            base[state.key(added)] = min(confidences, default=0.5)
        dropped: list[CodeSuggestion] = []
        for role, patterns in combination.drop.items():
            role_patterns = combination.roles[role]
            for suggestion in list(state.diagnoses()):
                if added is not None and suggestion is added:
                    continue
                if target is not None and state.key(suggestion) == state.icd_key(target):
                    continue
                if any_match(role_patterns, suggestion.code) and any_match(patterns, suggestion.code):
                    state.move_out(suggestion)
                    dropped.append(suggestion)
        if not added and not dropped:
            return False
        touched = [*changed, *dropped]
        result_text = f"{target} ({state.tabular.title(target)})" if target else "the more specific code"
        message = (
            f"{combination.name}: {result_text} replaces "
            f"{', '.join(d.code for d in dropped) or 'nothing'} (Guidelines {combination.guideline})"
        )
        warning = {d.code: f"combination:{target or 'redundant'}" for d in dropped}
        if added is not None:
            warning[added.code] = "combination:" + "+".join(sorted({c.code for c in dropped}) or ["added"])
        state.fire(self.name, touched, message, warning=warning)
        return True

    def _superseded(self, state: RulesState, target: str) -> bool:
        """Whether `target` is already absorbed by a suggested combination code: it was dropped for one
        still suggested, or a combination taking `target` as a role and dropping it (I11.0 into I13.0,
        I12.- into I13.-) has its result suggested. Two hypertensive combination codes are never coded."""
        moved = state.candidate(target)
        if moved is not None and any(
            w.startswith("combination:") and state.final(w.split(":", 1)[1]) is not None
            for w in moved.warnings
        ):
            return True
        for other in self.combinations:
            absorbs = any(
                any_match(other.roles[role], target) and any_match(patterns, target)
                for role, patterns in other.drop.items()
            )
            if absorbs and any(state.final(a.code) is not None for a in other.result):
                return True
        return False

    def _result(self, state: RulesState, combination: Combination) -> str | None:
        for alternative in combination.result:
            if alternative.when_any and not self._documented(state, alternative.when_any):
                continue
            entry = state.tabular.entry(alternative.code)
            if entry is None or not entry.billable:
                return None
            return entry.code
        return None
