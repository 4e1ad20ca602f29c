"""Safety nets run first: a code only negated / family / hypothetical text supports is not suggested,
an uncertain diagnosis is coded by the encounter's setting (resources/uncertainty.json: the symptoms in
outpatient, emergency and observation encounters, Guidelines IV.H; as if established in an inpatient
admission, II.H), and a code the ICD-10-CM release does not know is not final."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medcode.data.types import Evidence
from medcode.model.rules.context import overlaps
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState
from medcode.model.rules.terms import content_words


@dataclass(frozen=True)
class UncertaintyPolicy:
    """Which settings code an uncertain diagnosis as its symptoms, which code it as if established."""

    as_symptom: frozenset[str]
    symptom_section: str
    as_established: frozenset[str]
    established_section: str
    candidate_floor: float

    @classmethod
    def load(cls, data: dict[str, Any] | None = None) -> UncertaintyPolicy:
        data = data if data is not None else load_resource("uncertainty.json")
        symptom, established = data["code_as_symptom"], data["code_as_established"]
        return cls(
            as_symptom=frozenset(symptom["settings"]),
            symptom_section=str(symptom["section"]),
            as_established=frozenset(established["settings"]),
            established_section=str(established["section"]),
            candidate_floor=float(established.get("candidate_floor", 0.3)),
        )


class AssertionRule:
    """A code whose evidence spans all fall on negated, family or hypothetical mentions moves out. A code
    whose condition is documented only as possible moves out where the setting codes the symptoms
    (IV.H); where it codes the uncertain diagnosis as established (II.H), the best candidate naming each
    possible mention is coded, routed for a coder to confirm."""

    name = "assertion"

    def __init__(self, policy: UncertaintyPolicy | None = None) -> None:
        self.policy = policy if policy is not None else UncertaintyPolicy.load()

    def __call__(self, state: RulesState) -> None:
        context = state.context
        setting = state.encounter.setting
        for suggestion in list(state.codes):
            if context.evidence_all_absent(suggestion, state.tabular.title(suggestion.code)):
                state.move_out(suggestion)
                state.fire(
                    self.name,
                    [suggestion],
                    "every evidence span is a negated, family or hypothetical mention: not coded",
                    warning={suggestion.code: "assertion:not_present"},
                )
            elif (
                setting in self.policy.as_symptom
                and suggestion.system == "ICD-10-CM"
                and context.evidence_only_uncertain(suggestion, state.tabular.title(suggestion.code))
            ):
                state.move_out(suggestion)
                state.fire(
                    self.name,
                    [suggestion],
                    f"documented only as possible/probable in an {setting} encounter: the signs and "
                    f"symptoms are coded instead (Guidelines {self.policy.symptom_section})",
                    reason=f"uncertain_diagnosis:{suggestion.code}",
                    warning={suggestion.code: "assertion:uncertain"},
                )
        if setting in self.policy.as_established:
            self._establish(state)

    def _establish(self, state: RulesState) -> None:
        """Per possible mention no suggested code names: the best billable candidate naming it."""
        context = state.context
        for mention in context.uncertain_mentions():
            words = content_words(mention.text)
            if not words:
                continue
            if any(
                any(overlaps(e, mention) for e in c.evidence)
                and content_words(state.tabular.title(c.code)) & words
                for c in state.diagnoses()
            ):
                continue
            best = None
            for candidate in state.candidates:
                if candidate.system != "ICD-10-CM" or candidate.confidence < self.policy.candidate_floor:
                    continue
                entry = state.tabular.entry(candidate.code)
                if entry is None or not entry.billable or entry.code.startswith("Z"):
                    continue
                if not any(overlaps(e, mention) for e in candidate.evidence):
                    continue
                if not content_words(entry.title) & words and entry.code.replace(".", "") not in {
                    c.replace(".", "") for c in mention.concepts
                }:
                    continue
                if best is None or candidate.confidence > best.confidence:
                    best = candidate
            if best is None:
                continue
            span = Evidence(
                document_id=mention.document_id, start=mention.start, end=mention.end, text=mention.text
            )
            stored = state.add_final(best.model_copy(update={"evidence": [*best.evidence, span]}))
            state.fire(
                self.name,
                [stored],
                f'"{mention.text}" is documented as uncertain in an inpatient admission: coded as if '
                f"established (Guidelines {self.policy.established_section})",
                reason=f"uncertain_diagnosis:{stored.code}",
                warning={stored.code: "assertion:uncertain_established"},
            )


class CodeSetRule:
    """An ICD-10-CM code the loaded release does not contain is moved to the candidates and routed."""

    name = "code_set"

    def __call__(self, state: RulesState) -> None:
        for suggestion in list(state.diagnoses()):
            if state.tabular.entry(suggestion.code) is None:
                state.move_out(suggestion)
                state.fire(
                    self.name,
                    [suggestion],
                    f"not a code of {state.tabular.version}",
                    reason=f"unknown_code:{suggestion.code}",
                    warning={suggestion.code: "code_set:unknown"},
                )
