"""E/M office-visit level (CPT 99202-99215) for outpatient encounters.

Only encounters whose note documents an office visit (total time, new/established status, a visit
phrase, or an office/clinic/progress document type) get a level. The level comes from the documented total time on the date of the visit when the note states it, else
from medical decision making: problems (number of diagnoses and their acuity words), data (tests and
records reviewed or ordered, independent historian / interpretation, discussion with another
physician) and risk (prescription drug management, decisions about hospitalisation or surgery); the MDM
level is the one that two of the three elements meet. New vs established patient comes from the note's
phrases. Codes, their MDM level and time thresholds are the data engineer's E/M set
(data/resources/em_office_visits.json); the phrases are resources/em_levels.json. A level derived from
MDM, or a patient status the note does not state, routes with "em_level_uncertain:CODE".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from medcode.data.cpt import EmVisit, load_em_office_visits
from medcode.data.types import CodeSuggestion, Evidence
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState

_LEVELS = ("straightforward", "low", "moderate", "high")
_PROBLEMS = ("minimal", "low", "moderate", "high")
_DATA = ("minimal", "limited", "moderate", "extensive")


@dataclass(frozen=True)
class Finding:
    """A phrase found in the note: which document, where, and the text."""

    document_id: str
    start: int
    end: int
    text: str

    def evidence(self) -> Evidence:
        return Evidence(document_id=self.document_id, start=self.start, end=self.end, text=self.text)


@dataclass(frozen=True)
class EmDecision:
    code: str
    description: str
    patient: str
    patient_stated: bool
    basis: str
    """"time" or "mdm"."""
    minutes: int | None
    mdm: str
    detail: str
    evidence: tuple[Finding, ...]


def _compile(items: list[str]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in items]


class EmLevelRule:
    name = "em_level"

    def __init__(self, visits: list[EmVisit] | None = None, cues: dict[str, Any] | None = None) -> None:
        self.visits = [v for v in (visits if visits is not None else load_em_office_visits()) if v.time_min]
        data = cues if cues is not None else load_resource("em_levels.json")
        self.total_time = _compile(data["total_time"])
        self.office_visit = _compile(data["office_visit"])
        self.office_types = tuple(t.lower() for t in data["office_document_types"])
        self.status = {k: _compile(v) for k, v in data["patient_status"].items()}
        self.problem_cues = {k: _compile(data["problems"][k]) for k in ("high", "moderate")}
        self.moderate_min_problems = int(data["problems"]["moderate_min_problems"])
        self.self_limited = _compile(data["problems"].get("self_limited", []))
        self.elements_needed = int(data.get("mdm_table", {}).get("elements_needed", 2))
        self.data_cues = {k: _compile(v) for k, v in data["data"].items()}
        self.risk_cues = {k: _compile(v) for k, v in data["risk"].items()}

    def __call__(self, state: RulesState) -> None:
        if state.encounter.setting != "outpatient":
            return
        decision = self.decide(state)
        if decision is None:
            return
        confidence = {("time", True): 0.9, ("time", False): 0.7, ("mdm", True): 0.6, ("mdm", False): 0.5}[
            (decision.basis, decision.patient_stated)
        ]
        suggestion = CodeSuggestion(
            system="CPT",
            code=decision.code,
            description=decision.description,
            confidence=confidence,
            evidence=[f.evidence() for f in decision.evidence],
            rationale=f"E/M office visit: {decision.detail}",
        )
        existing = [c for c in state.codes if c.system == "CPT" and c.code in {v.code for v in self.visits}]
        for other in existing:
            if other.code != decision.code:
                state.move_out(other)
        stored = state.add_final(suggestion)
        uncertain = decision.basis == "mdm" or not decision.patient_stated
        state.fire(
            self.name,
            [stored, *[c for c in existing if c.code != decision.code]],
            decision.detail,
            reason=f"em_level_uncertain:{decision.code}" if uncertain else None,
            warning={stored.code: f"em_level:{decision.basis}"},
        )

    # ---------------------------------------------------------------------------------------------------
    def decide(self, state: RulesState) -> EmDecision | None:
        documents = state.encounter.documents
        patient, stated, status_found = self._patient(documents)
        minutes, time_found = self._minutes(documents)
        if minutes is None and not self._problem_addressed(state):
            return None  # no time and no problem addressed: the note cannot support a level
        mdm, mdm_detail, mdm_found = self._mdm(state)
        visits = [v for v in self.visits if v.patient == patient]
        by_time = None
        if minutes is not None:
            reached = [v for v in visits if v.time_min is not None and minutes >= v.time_min]
            by_time = max(reached, key=lambda v: v.time_min or 0) if reached else None
        by_mdm = next((v for v in visits if v.mdm == mdm), None)
        chosen = by_time or by_mdm
        if chosen is None or not (minutes is not None or stated or self._office_visit(documents)):
            return None  # not documented as an office visit: no E/M level is suggested
        basis = "time" if by_time is not None else "mdm"
        status_text = f"{patient} patient" + ("" if stated else " (assumed: the note does not say)")
        article = "an" if patient == "established" else "a"
        if basis == "time":
            detail = f"{chosen.code} for {article} {status_text}: total time {minutes} minutes documented"
            findings = [*time_found, *status_found]
        else:
            timing = (
                f"; documented time {minutes} minutes is below every level" if minutes is not None else ""
            )
            detail = f"{chosen.code} for {article} {status_text}: medical decision making {mdm} ({mdm_detail}){timing}"
            findings = [*status_found, *mdm_found]
        return EmDecision(
            code=chosen.code,
            description=chosen.description,
            patient=patient,
            patient_stated=stated,
            basis=basis,
            minutes=minutes,
            mdm=mdm,
            detail=detail,
            evidence=tuple(findings[:6]),
        )

    @staticmethod
    def _problem_addressed(state: RulesState) -> bool:
        """A coded diagnosis, or a current condition or symptom the note documents."""
        if state.diagnoses():
            return True
        return any(
            not m.assertion.historical and m.type in ("condition", "sign_symptom", "injury")
            for m in state.context.present
        )

    def _office_visit(self, documents: list[Any]) -> bool:
        if any(t in d.type.lower() for d in documents for t in self.office_types):
            return True
        return bool(self._find(documents, self.office_visit))

    def _find(
        self, documents: list[Any], patterns: list[re.Pattern[str]]
    ) -> list[tuple[Finding, re.Match[str]]]:
        out = []
        for document in documents:
            for pattern in patterns:
                for m in pattern.finditer(document.text):
                    out.append((Finding(document.document_id, m.start(), m.end(), m.group(0)), m))
        return out

    def _patient(self, documents: list[Any]) -> tuple[str, bool, list[Finding]]:
        new = self._find(documents, self.status["new"])
        established = self._find(documents, self.status["established"])
        if new and not established:
            return "new", True, [f for f, _ in new[:1]]
        if established and not new:
            return "established", True, [f for f, _ in established[:1]]
        return "established", False, []

    def _minutes(self, documents: list[Any]) -> tuple[int | None, list[Finding]]:
        found = self._find(documents, self.total_time)
        if not found:
            return None, []
        finding, match = found[0]
        return int(match.group(1)), [finding]

    def _mdm(self, state: RulesState) -> tuple[str, str, list[Finding]]:
        documents = state.encounter.documents
        findings: list[Finding] = []
        # problems
        categories = {c.code.replace(".", "")[:3] for c in state.diagnoses()}
        high = self._find(documents, self.problem_cues["high"])
        moderate = self._find(documents, self.problem_cues["moderate"])
        if high:
            problems = 3
            findings.append(high[0][0])
        elif moderate or len(categories) >= self.moderate_min_problems:
            problems = 2
            findings.extend(f for f, _ in moderate[:1])
        elif len(categories) <= 1 and self._find(documents, self.self_limited):
            problems = 0  # one self-limited or minor problem
        else:
            problems = 1 if categories else 0
        # data
        items = {f.text.lower() for f, _ in self._find(documents, self.data_cues["review_or_order"])}
        historian = bool(self._find(documents, self.data_cues["independent_historian"]))
        interpretation = self._find(documents, self.data_cues["independent_interpretation"])
        discussion = self._find(documents, self.data_cues["discussion"])
        category1 = len(items) + int(historian) >= 3
        met = sum([category1, bool(interpretation), bool(discussion)])
        if met >= 2:
            data = 3
        elif met == 1:
            data = 2
        elif len(items) >= 2 or historian:
            data = 1
        else:
            data = 0
        findings.extend(f for f, _ in [*interpretation[:1], *discussion[:1]])
        # risk
        risk = 0
        for level, name in ((3, "high"), (2, "moderate"), (1, "low")):
            hits = self._find(documents, self.risk_cues[name])
            if hits:
                risk = level
                findings.append(hits[0][0])
                break
        levels = sorted([problems, data, risk], reverse=True)
        mdm = _LEVELS[levels[self.elements_needed - 1]]
        detail = (
            f"problems {_PROBLEMS[problems]} ({len(categories)} diagnosis categories), "
            f"data {_DATA[data]} ({len(items)} tests/records reviewed or ordered), risk {_PROBLEMS[risk]}"
        )
        return mdm, detail, findings
