"""The coding-rules step: ranked, thresholded codes in; a code set a certified coder would accept out.

Runs after ranking + thresholds and before routing. Each rule is a small callable with one job; they run
in a fixed order (safety first, then the classification's own rules, then the procedure rules):

    assertion -> code_set -> history_of -> combination -> specificity -> seventh_character
    -> laterality -> unspecified -> code_first -> use_additional -> excludes1 -> age_sex -> em_level
    -> ncci

Codes taken out of the suggested set move to the candidates with their confidence (the ranked list keeps
them, so ranking metrics such as MAP are protected); codes the rules add carry a slightly discounted
confidence of the codes they derive from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from medcode.data.types import CodeSuggestion, Encounter, Mention
from medcode.model.rules.age_sex import AgeSexRule
from medcode.model.rules.combinations import CombinationRule
from medcode.model.rules.em import EmLevelRule
from medcode.model.rules.etiology import CodeFirstRule, UseAdditionalRule
from medcode.model.rules.excludes import Excludes1Rule
from medcode.model.rules.history import HistoryRule
from medcode.model.rules.laterality import LateralityRule
from medcode.model.rules.ncci import NcciRule
from medcode.model.rules.safety import AssertionRule, CodeSetRule
from medcode.model.rules.seventh import SeventhCharacterRule
from medcode.model.rules.specificity import SpecificityRule
from medcode.model.rules.state import RulesOutcome, RulesState
from medcode.model.rules.tabular import RuleTabular
from medcode.model.rules.unspecified import UnspecifiedRule

if TYPE_CHECKING:
    from medcode.data.icd10cm import ICD10CM

logger = logging.getLogger(__name__)

Rule = Callable[[RulesState], None]


class CodingRules:
    """The rules step; build once (it caches the tabular views), call per encounter."""

    def __init__(
        self,
        icd: ICD10CM | None = None,
        ncci_file: Path | None = None,
        *,
        derived_discount: float = 0.9,
        conflict_margin: float = 0.1,
        candidate_floor: float = 0.1,
        combination_floor: float | None = None,
        use_settings: bool = True,
    ) -> None:
        if icd is None:
            from medcode.data.icd10cm import load_icd10cm

            icd = load_icd10cm()
        if ncci_file is None and use_settings:
            from medcode.settings import get_settings

            ncci_file = get_settings().ncci_file
        self.tabular = RuleTabular(icd)
        self.code_set_version = icd.version
        self.rules: list[Rule] = [
            AssertionRule(),
            CodeSetRule(),
            HistoryRule(discount=derived_discount),
            CombinationRule(candidate_floor=combination_floor, discount=derived_discount),
            SpecificityRule(candidate_floor=candidate_floor / 2, discount=derived_discount),
            SeventhCharacterRule(discount=(1 + derived_discount) / 2),
            LateralityRule(),
            UnspecifiedRule(margin=conflict_margin),
            CodeFirstRule(candidate_floor=candidate_floor),
            UseAdditionalRule(candidate_floor=candidate_floor, discount=derived_discount),
            Excludes1Rule(margin=conflict_margin),
            AgeSexRule(),
            EmLevelRule(),
        ]
        if ncci_file is not None:
            self.rules.append(NcciRule.from_file(Path(ncci_file)))
        self.ncci_file = ncci_file

    @property
    def rule_names(self) -> list[str]:
        return [str(getattr(rule, "name", type(rule).__name__)) for rule in self.rules]

    def __call__(
        self,
        encounter: Encounter,
        mentions: list[Mention],
        codes: list[CodeSuggestion],
        candidates: list[CodeSuggestion],
    ) -> RulesOutcome:
        started = time.perf_counter()
        state = RulesState.start(encounter, mentions, codes, candidates, self.tabular)
        for rule in self.rules:
            rule(state)
        outcome = state.outcome()
        logger.debug(
            "rules on %s: %d firings in %.1f ms",
            encounter.encounter_id,
            len(outcome.firings),
            (time.perf_counter() - started) * 1000,
        )
        return outcome
