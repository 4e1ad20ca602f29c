"""From scored codes to a Result: thresholds split suggestions from candidates, the coding rules run
(when the rules package is installed), then the routing policy decides."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from data.types import CodeSuggestion, Encounter, Evidence, Mention, Result, Task, task_of_system
from model.routing import RoutingPolicy, route
from model.thresholds import TaskThresholds

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


_RULES_UNSET = object()
_rules_cache: Any = _RULES_UNSET


def coding_rules() -> Any | None:
    """The rules step (`model.rules.CodingRules()`), or None when that package is not installed."""
    global _rules_cache
    if _rules_cache is _RULES_UNSET:
        try:
            from model.rules import CodingRules
        except ImportError:
            _rules_cache = None
        else:
            try:
                _rules_cache = CodingRules()
            except Exception as exc:  # the rules must never take suggestions down
                log.warning("coding rules unavailable: %s", exc)
                _rules_cache = None
    return _rules_cache


def build_result(
    encounter: Encounter,
    scored: Sequence[Scored],
    thresholds: Callable[[Task], TaskThresholds],
    *,
    model_version: str,
    code_set_version: str,
    calibrated: bool,
    mentions: Sequence[Mention] = (),
    rules: Any | None = _RULES_UNSET,
    policy: RoutingPolicy | None = None,
    max_candidates: int = MAX_CANDIDATES,
) -> Result:
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
            passes = s.eligible and bool(s.evidence) and s.confidence >= thresholds(task).decision_for(s.code)
            (codes if passes else candidates).append(suggestion)
    rule_reasons: list[str] = []
    rules = coding_rules() if rules is _RULES_UNSET else rules
    if rules is not None:
        try:
            outcome = rules(encounter, list(mentions), codes, candidates)
        except Exception:  # a rules bug must not lose the suggestions; it is logged and routed
            log.exception("coding rules failed on encounter %s", encounter.encounter_id)
            rule_reasons.append("rules_error")
        else:
            codes, candidates = list(outcome.codes), list(outcome.candidates)
            rule_reasons.extend(outcome.reasons)
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
