"""The coding-rules step: ranked, thresholded codes in; a code set a certified coder would accept out.

Runs after ranking + thresholds and before routing. Each rule is a small callable with one job; they run
in a fixed order (safety first, then the classification's own rules, then the procedure rules):

    assertion -> code_set -> history_of -> sequela -> pregnancy -> status_codes -> combination -> specificity
    -> injury -> seventh_character -> laterality -> unspecified -> code_first -> use_additional -> excludes1
    -> age_sex -> em_level -> ncci

Codes taken out of the suggested set move to the candidates with their confidence (the ranked list keeps
them, so ranking metrics such as MAP are protected); codes the rules add carry a slightly discounted
confidence of the codes they derive from.

What a model runs is its `RulesConfig` (on/off and the parsed NCCI edits), stored in its pack:
`build_rules(config)` makes the step a coder owns. Nothing here reads the environment.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.data.errors import ModelNotFoundError
from medcode.data.types import CodeSuggestion, Encounter, Mention
from medcode.model.rules.age_sex import AgeSexRule
from medcode.model.rules.combinations import CombinationRule
from medcode.model.rules.em import EmLevelRule
from medcode.model.rules.etiology import CodeFirstRule, UseAdditionalRule
from medcode.model.rules.excludes import Excludes1Rule
from medcode.model.rules.history import HistoryRule
from medcode.model.rules.injury import InjuryRule
from medcode.model.rules.laterality import LateralityRule
from medcode.model.rules.ncci import NcciRule, PtpEdit, read_ncci_file
from medcode.model.rules.pregnancy import PregnancyRule
from medcode.model.rules.safety import AssertionRule, CodeSetRule
from medcode.model.rules.sequelae import SequelaRule
from medcode.model.rules.seventh import SeventhCharacterRule
from medcode.model.rules.specificity import SpecificityRule
from medcode.model.rules.state import RulesOutcome, RulesState
from medcode.model.rules.status import StatusCodesRule
from medcode.model.rules.tabular import RuleTabular
from medcode.model.rules.unspecified import UnspecifiedRule

if TYPE_CHECKING:
    from medcode.data.icd10cm import ICD10CM

logger = logging.getLogger(__name__)

Rule = Callable[[RulesState], None]


@dataclass(frozen=True)
class RulesConfig:
    """The rules a model runs: on or off, and the NCCI edits (parsed at training time; the pack keeps them,
    so the file need not exist where the pack is loaded)."""

    enabled: bool = True
    ncci_edits: tuple[PtpEdit, ...] = ()
    ncci_source: str | None = None
    """Name of the file the edits were read from (for the record)."""

    @classmethod
    def read(cls, enabled: bool = True, ncci_file: Path | None = None) -> RulesConfig:
        """The config of a training run; a named NCCI file that cannot be used raises its MedcodeError."""
        if ncci_file is None or not enabled:
            return cls(enabled=enabled)
        path = Path(ncci_file)
        return cls(enabled=True, ncci_edits=tuple(read_ncci_file(path)), ncci_source=path.name)

    def to_json(self) -> dict[str, Any]:
        """The summary a pack's config carries (the edits go to their own file: `edits_json`)."""
        return {"enabled": self.enabled, "ncci_source": self.ncci_source, "ncci_edits": len(self.ncci_edits)}

    def edits_json(self) -> list[list[str | None]]:
        return [
            [e.column1, e.column2, e.modifier, _iso(e.effective), _iso(e.deletion)] for e in self.ncci_edits
        ]

    @classmethod
    def from_json(cls, data: dict[str, Any], edits: Sequence[Sequence[str | None]] = ()) -> RulesConfig:
        return cls(
            enabled=bool(data.get("enabled", True)),
            ncci_edits=tuple(
                PtpEdit(str(a), str(b), str(m), _date(eff), _date(dele)) for a, b, m, eff, dele in edits
            ),
            ncci_source=data.get("ncci_source"),
        )


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


NCCI_FILE = "rules/ncci_edits.json"
"""The parsed NCCI edits inside a model pack."""


def save_rules(config: RulesConfig, folder: Path) -> dict[str, Any]:
    """Write the config's NCCI edits into a pack folder (when it has any); returns the summary the pack's
    config keeps under "rules"."""
    if config.ncci_edits:
        file = Path(folder) / NCCI_FILE
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(config.edits_json(), separators=(",", ":")), encoding="utf-8")
    return config.to_json()


def load_rules(summary: dict[str, Any] | None, folder: Path) -> RulesConfig:
    """The rules config a pack carries (`summary`: its config's "rules"; None: a pack from before rules
    were stored, which ran the rules without NCCI edits)."""
    if summary is None:
        return RulesConfig()
    edits: list[list[str | None]] = []
    if int(summary.get("ncci_edits") or 0):
        file = Path(folder) / NCCI_FILE
        try:
            edits = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                f"model pack {folder} has unreadable NCCI edits ({NCCI_FILE}): {exc}"
            ) from exc
    try:
        return RulesConfig.from_json(summary, edits)
    except (ValueError, TypeError) as exc:
        raise ModelNotFoundError(
            f"model pack {folder} has malformed NCCI edits ({NCCI_FILE}): {exc}"
        ) from exc


def build_rules(config: RulesConfig, icd: ICD10CM | None = None) -> CodingRules | None:
    """The rules step of a config (None when switched off)."""
    if not config.enabled:
        return None
    return CodingRules(icd, ncci_edits=config.ncci_edits)


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
        ncci_edits: Sequence[PtpEdit] = (),
        use_settings: bool = False,
    ) -> None:
        """`ncci_file` (read now) or `ncci_edits` (already parsed) add the NCCI rule. `use_settings` is
        ignored (nothing here reads the environment); it stays until its callers drop it."""
        if icd is None:
            from medcode.data.icd10cm import load_icd10cm

            icd = load_icd10cm()
        self.tabular = RuleTabular(icd)
        self.code_set_version = icd.version
        self.rules: list[Rule] = [
            AssertionRule(),
            CodeSetRule(),
            HistoryRule(discount=derived_discount),
            SequelaRule(),
            PregnancyRule(discount=derived_discount),
            StatusCodesRule(),
            CombinationRule(candidate_floor=combination_floor, discount=derived_discount),
            SpecificityRule(candidate_floor=candidate_floor / 2, discount=derived_discount),
            InjuryRule(),
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
        elif ncci_edits:
            self.rules.append(NcciRule(list(ncci_edits)))
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
