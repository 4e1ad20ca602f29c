"""Pregnancy: in a pregnancy note, the chapter 15 code instead of the non-pregnancy code, and Z3A weeks.

The table is data (resources/pregnancy.json): condition codes (prefixes) and the chapter 15 header the
Alphabetic Index gives for them under "Pregnancy, complicated by"; the billable code below the header is
the one whose title the note supports best (the trimester from the stated trimester or weeks, "diet
controlled"), else the header's "unspecified" code. With `keep` the condition code stays beside it (the
chapter 15 code's "use additional code"), otherwise it moves to the candidates. Weeks of gestation the
note states give Z3A.xx (Guidelines I.C.15.b.4), and a Z3A code for other weeks moves out. Nothing fires
for a male patient or a note without pregnancy context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medcode.data.types import Evidence
from medcode.model.rules.refs import compact
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.terms import title_support, title_terms

RESOURCE = "pregnancy.json"


@dataclass(frozen=True)
class PregnancyEntry:
    prefixes: tuple[str, ...]
    header: str
    keep: bool


class PregnancyRule:
    name = "pregnancy"

    def __init__(self, data: dict[str, Any] | None = None, discount: float = 0.9, confidence: float = 0.8):
        data = data if data is not None else load_resource(RESOURCE)
        self.entries = tuple(
            PregnancyEntry(tuple(compact(c) for c in e["codes"]), e["header"], bool(e["keep"]))
            for e in data["entries"]
        )
        self.weeks = dict(data["weeks"])
        self.section = str(data["section"])
        self.discount = discount
        self.confidence = confidence

    def __call__(self, state: RulesState) -> None:
        context = state.context
        if state.encounter.patient.sex == "male" or not context.cue("pregnancy_context"):
            return
        for suggestion in list(state.diagnoses()):
            key = compact(suggestion.code)
            entry = next((e for e in self.entries if key.startswith(e.prefixes)), None)
            if entry is None:
                continue
            target = self._choose(state, entry.header, suggestion)
            if target is None:
                continue
            title = state.tabular.title(target)
            added = derived(
                target,
                title,
                suggestion.confidence * self.discount,
                list(suggestion.evidence),
                f"rule {self.name}: chapter 15 code for {suggestion.code} in a pregnancy (Guidelines {self.section})",
            )
            if entry.keep:
                stored = state.add_final(added, before=suggestion)
                message = f"{suggestion.code} in a pregnancy: {target} ({title}) sequenced first, {suggestion.code} kept"
            else:
                stored = state.replace(suggestion, added)
                message = f"{suggestion.code} in a pregnancy is coded {target} ({title}) instead"
            state.fire(self.name, [stored, suggestion], message)
        self._weeks(state)

    def _choose(self, state: RulesState, header: str, suggestion: Any) -> str | None:
        targets = [
            t
            for t in state.tabular.targets(header)
            if not any(w in state.tabular.title(t).lower() for w in ("childbirth", "puerperium"))
        ]
        if not targets:
            return None
        words = state.context.words_for([suggestion])
        given = title_terms(state.tabular.title(header)).required
        scored = []
        for code in targets:
            title = state.tabular.title(code)
            support = title_support(title, words, given)
            if support.violated or (support.missing and "unspecified" not in title.lower()):
                continue
            scored.append((support.matched, -support.missing, code))
        if not scored:
            return None
        scored.sort(reverse=True)
        if len(scored) > 1 and scored[0][:2] == scored[1][:2]:
            fallback = [c for _, _, c in scored if "unspecified" in state.tabular.title(c).lower()]
            return fallback[0] if len(fallback) == 1 else None
        return scored[0][2]

    def _weeks(self, state: RulesState) -> None:
        weeks = state.context.gestational_weeks
        if weeks is None:
            return
        if weeks < int(self.weeks["min"]):
            code = str(self.weeks["below"])
        elif weeks > int(self.weeks["max"]):
            code = str(self.weeks["above"])
        else:
            code = str(self.weeks["code"]).format(weeks=weeks)
        entry = state.tabular.entry(code)
        if entry is None or not entry.billable:
            return
        for other in list(state.diagnoses()):
            if compact(other.code).startswith("Z3A") and compact(other.code) != compact(code):
                state.move_out(other)
                state.fire(
                    self.name, [other], f"the note states {weeks} weeks of gestation, not {other.code}"
                )
        if state.final(code) is not None:
            return
        spans = state.context.cue_spans("gestational_weeks")
        evidence = [Evidence(document_id=d, start=s, end=e, text=t) for d, s, e, t in spans[:1]]
        added = state.add_final(
            derived(
                entry.code,
                entry.title,
                self.confidence,
                evidence,
                f"rule {self.name}: weeks of gestation stated in the note (Guidelines I.C.15.b.4)",
            )
        )
        state.fire(self.name, [added], f"{weeks} weeks of gestation documented: {entry.code}")
