"""From scored codes to a Result: thresholds split suggestions from candidates, the coding rules run (the
step the coder owns, built from its pack's rules config; None when the model runs none), then the routing
policy decides.

The ranked list (`Result.ranked`: suggested codes and candidates by confidence, what MAP and the coders
see) keeps the ranker's order through the rules: every ranked code carries its place in the ranker's list
(`CodeSuggestion.rank`), codes the rules take out or promote keep the ranker's confidence and place, and
codes the rules derive (a billable child, a combination or personal-history code) follow the ranker's
codes, by confidence. The rules decide which codes are suggested, not how the ranker ordered them, so
they cannot lower MAP over the ranked list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from medcode.data.types import CodeSuggestion, Encounter, Evidence, Mention, Result, Task, task_of_system
from medcode.model.routing import RoutingPolicy, route
from medcode.model.thresholds import TaskThresholds

if TYPE_CHECKING:
    from medcode.model.rules.state import RulesOutcome

log = logging.getLogger(__name__)

MAX_CANDIDATES = 50
"""Ranked codes kept per task (suggested + alternatives): what MAP and the coders see."""


@dataclass
class Scored:
    system: str
    code: str
    confidence: float
    evidence: list[Evidence]
    description: str = ""
    rationale: str = ""
    eligible: bool = True
    """False when the code may be shown as an alternative but not suggested (e.g. not the best code of
    any mention in the built-in model)."""
    extra: dict[str, Any] = field(default_factory=dict)
    floor: float = 0.0
    """A floor the code's evidence guarantees for the suggestion decision only (a trained model's index-walk
    code, `DefaultConfig.walk_floors`): the code is suggested when the floor passes the threshold, while its
    confidence, and so its place in the ranked list and its routing, stay the ranker's."""


class RulesStep(Protocol):
    """The coding-rules step (`model.rules.CodingRules`): the ranker's split in, the rules' outcome out."""

    def __call__(
        self,
        encounter: Encounter,
        mentions: list[Mention],
        codes: list[CodeSuggestion],
        candidates: list[CodeSuggestion],
    ) -> RulesOutcome: ...


def split_by_threshold(
    scored: Sequence[Scored],
    thresholds: Callable[[Task], TaskThresholds],
    max_candidates: int = MAX_CANDIDATES,
) -> tuple[list[CodeSuggestion], list[CodeSuggestion]]:
    """The ranker's output as (suggested codes, candidates), each highest confidence first."""
    codes: list[CodeSuggestion] = []
    candidates: list[CodeSuggestion] = []
    for task in ("diagnosis", "procedure"):
        ranked = sorted(
            (s for s in scored if task_of_system(s.system) == task),
            key=lambda s: (-s.confidence, s.code),
        )[:max_candidates]
        for s in ranked:
            suggestion = CodeSuggestion(
                system=s.system,  # type: ignore[arg-type]
                code=s.code,
                description=s.description,
                confidence=float(min(1.0, max(0.0, s.confidence))),
                evidence=s.evidence,
                rationale=s.rationale,
            )
            passes = (
                s.eligible
                and bool(s.evidence)
                and max(s.confidence, s.floor) >= thresholds(task).decision_for(s.code)
            )
            (codes if passes else candidates).append(suggestion)
    return codes, candidates


def set_ranker_order(codes: Sequence[CodeSuggestion], candidates: Sequence[CodeSuggestion]) -> None:
    """Record each code's place in the ranker's list (`CodeSuggestion.rank`: the order `Result.ranked`
    gives before the rules), so that whatever the rules move, equal confidences keep that order."""
    ranked = sorted([*codes, *candidates], key=lambda c: -c.confidence)
    for index, suggestion in enumerate(ranked):
        suggestion.set_rank(index)


def keep_ranker_order(candidates: Sequence[CodeSuggestion]) -> list[CodeSuggestion]:
    """Candidates after the rules in the ranker's order (by confidence, ties by rank); codes the rules
    added (no rank) follow, by confidence, in the order the rules added them."""
    indexed = list(enumerate(candidates))
    indexed.sort(key=lambda item: (item[1].rank is None, -item[1].confidence, item[1].rank or 0, item[0]))
    return [c for _, c in indexed]


def apply_rules(
    encounter: Encounter,
    codes: list[CodeSuggestion],
    candidates: list[CodeSuggestion],
    mentions: Sequence[Mention],
    rules: RulesStep | None,
) -> tuple[list[CodeSuggestion], list[CodeSuggestion], list[str]]:
    """Run the rules step on the ranker's split; returns (codes, candidates, routing reasons)."""
    set_ranker_order(codes, candidates)
    if rules is None:
        return codes, candidates, []
    try:
        outcome = rules(encounter, list(mentions), codes, candidates)
    except Exception:  # a rules bug must not lose the suggestions; it is logged and routed
        log.exception("coding rules failed on encounter %s", encounter.encounter_id)
        return codes, candidates, ["rules_error"]
    return list(outcome.codes), keep_ranker_order(outcome.candidates), list(outcome.reasons)


def build_result(
    encounter: Encounter,
    scored: Sequence[Scored],
    thresholds: Callable[[Task], TaskThresholds],
    *,
    model_version: str,
    code_set_version: str,
    calibrated: bool,
    rules: RulesStep | None,
    mentions: Sequence[Mention] = (),
    policy: RoutingPolicy | None = None,
    max_candidates: int = MAX_CANDIDATES,
) -> Result:
    codes, candidates = split_by_threshold(scored, thresholds, max_candidates)
    codes, candidates, rule_reasons = apply_rules(encounter, codes, candidates, mentions, rules)
    routing = route(
        codes,
        candidates,
        thresholds if calibrated else None,
        calibrated=calibrated,
        rule_reasons=rule_reasons,
        policy=policy,
    )
    return Result(
        encounter_id=encounter.encounter_id,
        model_version=model_version,
        code_set_version=code_set_version,
        codes=codes,
        candidates=candidates,
        routing=routing,
        calibrated=calibrated,
    )
