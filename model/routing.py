"""The routing policy: auto-accept a result, or send it to a human coder with explicit reasons.

An encounter is auto-accepted only when every suggested code clears its stored auto-accept threshold and
nothing is ambiguous. Reasons (in this order):

- `cold_start_model`: the model is not calibrated (the built-in model); everything goes to review;
- `no_codes`: nothing was suggested;
- `low_confidence:CODE`: a suggested code is below its auto-accept threshold;
- `small_margin:CODE`: an alternative in the same category scores within `margin` of the suggested code;
- `unspecified:CODE`: an unspecified code is suggested while a more specific sibling has support in the note;
- rule conflicts reported by the coding rules (passed through as given, e.g. `excludes1:E11.9`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from medcode.data.types import CodeSuggestion, Routing, Task
from medcode.model.thresholds import TaskThresholds


@dataclass(frozen=True)
class RoutingPolicy:
    margin: float = 0.10
    """Two codes of the same category closer than this are ambiguous."""
    sibling_floor: float = 0.10
    """A more specific sibling 'may be supported' when it has evidence and at least this confidence."""


def category_of(suggestion: CodeSuggestion) -> str:
    """The group within which codes are alternatives: the ICD-10-CM category, a PCS table + body part."""
    code = suggestion.code.replace(".", "")
    return code[:4] if suggestion.system == "ICD-10-PCS" else code[:3]


def is_unspecified(suggestion: CodeSuggestion) -> bool:
    return "unspecified" in suggestion.description.lower()


def route(
    codes: Sequence[CodeSuggestion],
    candidates: Sequence[CodeSuggestion],
    thresholds: Callable[[Task], TaskThresholds] | None,
    *,
    calibrated: bool,
    rule_reasons: Iterable[str] = (),
    policy: RoutingPolicy | None = None,
) -> Routing:
    """Decide auto-accept or review for one result (pure function of the suggestions)."""
    policy = policy or RoutingPolicy()
    reasons: list[str] = []
    if not calibrated or thresholds is None:
        reasons.append("cold_start_model")
    if not codes:
        reasons.append("no_codes")
    for code in codes:
        if thresholds is not None and code.confidence < thresholds(code.task).auto_accept:
            reasons.append(f"low_confidence:{code.code}")
    chosen = {c.code for c in codes}
    alternatives = [c for c in [*codes, *candidates]]
    for code in codes:
        cat = category_of(code)
        rivals = [
            a
            for a in alternatives
            if a.code != code.code and a.system == code.system and category_of(a) == cat
        ]
        if any(a.code not in chosen and code.confidence - a.confidence < policy.margin for a in rivals):
            reasons.append(f"small_margin:{code.code}")
        if is_unspecified(code) and any(
            not is_unspecified(a) and a.evidence and a.confidence >= policy.sibling_floor for a in rivals
        ):
            reasons.append(f"unspecified:{code.code}")
    for reason in rule_reasons:
        if reason not in reasons:
            reasons.append(reason)
    decision = "review" if reasons else "auto_accept"
    return Routing(decision=decision, reasons=_unique(reasons))


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
