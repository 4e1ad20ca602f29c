"""Age and sex plausibility against the encounter's patient (resources/age_sex_edits.json).

A code for one sex on a patient of the other, or outside its age span (pregnancy chapter 12-55, perinatal
chapter at age 0), routes with "age_sex_conflict:CODE"; the code stays for the coder to decide. Unknown
age or sex (or sex 'other'/'unknown') checks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medcode.model.rules.refs import CodePattern, any_match, parse_patterns
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState


@dataclass(frozen=True)
class SexEdit:
    sex: str
    label: str
    patterns: tuple[CodePattern, ...]


@dataclass(frozen=True)
class AgeEdit:
    label: str
    min_age: int
    max_age: int
    patterns: tuple[CodePattern, ...]


def _patterns(items: list[str]) -> tuple[CodePattern, ...]:
    return tuple(p for item in items for p in parse_patterns(item))


def load_edits(data: dict[str, Any] | None = None) -> tuple[list[SexEdit], list[AgeEdit]]:
    data = data if data is not None else load_resource("age_sex_edits.json")
    sex = [SexEdit(e["sex"], e["label"], _patterns(e["codes"])) for e in data["sex_edits"]]
    age = [
        AgeEdit(e["label"], int(e["min_age"]), int(e["max_age"]), _patterns(e["codes"]))
        for e in data["age_edits"]
    ]
    return sex, age


class AgeSexRule:
    name = "age_sex"

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.sex_edits, self.age_edits = load_edits(data)

    def __call__(self, state: RulesState) -> None:
        patient = state.encounter.patient
        sex = patient.sex if patient.sex in ("female", "male") else None
        age = patient.age
        if sex is None and age is None:
            return
        for suggestion in state.diagnoses():
            problems: list[str] = []
            if sex is not None:
                for edit in self.sex_edits:
                    if edit.sex != sex and any_match(edit.patterns, suggestion.code):
                        problems.append(f"{edit.label} is for {edit.sex} patients; the patient is {sex}")
                        break
            if age is not None:
                for age_edit in self.age_edits:
                    if any_match(age_edit.patterns, suggestion.code) and not (
                        age_edit.min_age <= age <= age_edit.max_age
                    ):
                        span = (
                            f"age {age_edit.min_age}"
                            if age_edit.min_age == age_edit.max_age
                            else f"ages {age_edit.min_age}-{age_edit.max_age}"
                        )
                        problems.append(f"{age_edit.label} is for {span}; the patient is {age}")
                        break
            if problems:
                state.fire(
                    self.name,
                    [suggestion],
                    "; ".join(problems),
                    reason=f"age_sex_conflict:{suggestion.code}",
                    warning={suggestion.code: "age_sex:conflict"},
                )
