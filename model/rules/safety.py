"""Safety nets run first: a code only negated / family / hypothetical text supports is not suggested,
an uncertain diagnosis is not coded in an outpatient encounter, and a code the ICD-10-CM release does not
know is not final."""

from __future__ import annotations

from medcode.model.rules.state import RulesState


class AssertionRule:
    """A code whose evidence spans all fall on negated, family or hypothetical mentions moves out; in an
    outpatient encounter, so does one whose evidence is only 'possible' (Guidelines IV.H)."""

    name = "assertion"

    def __call__(self, state: RulesState) -> None:
        context = state.context
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
                state.encounter.setting == "outpatient"
                and suggestion.system == "ICD-10-CM"
                and context.evidence_only_uncertain(suggestion)
            ):
                state.move_out(suggestion)
                state.fire(
                    self.name,
                    [suggestion],
                    "documented only as possible/probable; outpatient encounters code the symptoms instead",
                    reason=f"uncertain_diagnosis:{suggestion.code}",
                    warning={suggestion.code: "assertion:uncertain"},
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
