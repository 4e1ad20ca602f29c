"""Coding rules: the step between ranking and routing that applies the ICD-10-CM classification's own
rules (specificity, Excludes1, code-first / use-additional, combination codes, 7th characters, age/sex
plausibility, history-of, laterality, unspecified beside specific) plus the E/M office-visit level and
NCCI procedure-to-procedure edits.

    rules = CodingRules()                      # once (packaged ICD-10-CM, settings' NCCI file if any)
    outcome = rules(encounter, mentions, codes, candidates)
    outcome.codes, outcome.candidates, outcome.reasons, outcome.firings

Rules are derived from the tabular and from data files in model/rules/resources/, never written per code.
"""

from __future__ import annotations

from medcode.model.rules.audit import CodeSetAudit, audit_codes
from medcode.model.rules.excludes import excludes1_conflict
from medcode.model.rules.pipeline import CodingRules
from medcode.model.rules.state import RuleFiring, RulesOutcome
from medcode.model.rules.tabular import RuleTabular

__all__ = [
    "CodeSetAudit",
    "CodingRules",
    "RuleFiring",
    "RuleTabular",
    "RulesOutcome",
    "audit_codes",
    "excludes1_conflict",
]
