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

import re
from dataclasses import dataclass
from typing import Any

from medcode.data.types import Evidence
from medcode.model.rules.context import overlaps
from medcode.model.rules.refs import compact
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.terms import content_words, title_support, title_terms

RESOURCE = "pregnancy.json"


@dataclass(frozen=True)
class PregnancyEntry:
    prefixes: tuple[str, ...]
    header: str
    keep: bool
    max_weeks: int | None = None


class PregnancyRule:
    name = "pregnancy"

    def __init__(self, data: dict[str, Any] | None = None, discount: float = 0.9, confidence: float = 0.8):
        data = data if data is not None else load_resource(RESOURCE)
        self.entries = tuple(
            PregnancyEntry(
                tuple(compact(c) for c in e["codes"]), e["header"], bool(e["keep"]), e.get("max_weeks")
            )
            for e in data["entries"]
        )
        self.weeks = dict(data["weeks"])
        self.supervision = dict(data["supervision"])
        self.implies = {k: tuple(v) for k, v in data.get("implies", {}).items()}
        self.cues = {
            key: [re.compile(p, re.IGNORECASE) for p in self.supervision[key]]
            for key in ("incidental", "routine", "first_pregnancy")
        }
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
            named = self._named_entry(state, suggestion)
            if named is not None and named is not entry:
                entry = PregnancyEntry(named.prefixes, named.header, False, named.max_weeks)
            weeks = context.gestational_weeks
            if entry.max_weeks is not None and (weeks is None or weeks > entry.max_weeks):
                continue  # the chapter 15 code is for early pregnancy only (O20: before 20 weeks)
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
        self._mentioned(state)
        self._supervision(state)
        self._weeks(state)

    def _named_entry(self, state: RulesState, suggestion: Any) -> PregnancyEntry | None:
        """The table entry of the lexicon concept of a mention under the code's evidence that names the
        condition ("gestational diabetes" -> P70.0 under an E11.9 the ranker gave)."""
        words = content_words(state.tabular.title(suggestion.code))
        for mention in state.context.mentions_of(suggestion):
            if not content_words(mention.text) & words:
                continue
            for concept in mention.concepts:
                key = compact(concept)
                entry = next((e for e in self.entries if key.startswith(e.prefixes)), None)
                if entry is not None:
                    return entry
        return None

    def _mentioned(self, state: RulesState) -> None:
        """A present mention whose lexicon concept the table lists ("gestational diabetes" -> P70.0) and
        that no suggested code covers gets the chapter 15 code too (the ranker may have left its
        non-pregnancy code out as implausible)."""
        covered = [e for c in state.diagnoses() for e in c.evidence]
        for mention in state.context.present:
            if mention.assertion.historical or any(overlaps(e, mention) for e in covered):
                continue
            for concept in mention.concepts:
                entry = next((e for e in self.entries if compact(concept).startswith(e.prefixes)), None)
                if entry is None:
                    continue
                evidence = Evidence(
                    document_id=mention.document_id, start=mention.start, end=mention.end, text=mention.text
                )
                source = derived(concept, state.tabular.title(concept), self.confidence, [evidence], "")
                target = self._choose(state, entry.header, source)
                if target is None or state.final(target) is not None:
                    break
                title = state.tabular.title(target)
                added = state.add_final(
                    derived(
                        target,
                        title,
                        self.confidence * self.discount,
                        [evidence],
                        f'rule {self.name}: chapter 15 code for "{mention.text}" in a pregnancy '
                        f"(Guidelines {self.section})",
                    )
                )
                state.fire(self.name, [added], f'"{mention.text}" in a pregnancy is coded {target} ({title})')
                covered.append(evidence)
                break

    def _supervision(self, state: RulesState) -> None:
        """Z33.1 only for a pregnancy documented as incidental; Z34.- for a routine prenatal visit with
        no chapter 15 code; neither beside a chapter 15 code (resources/pregnancy.json "supervision")."""
        table, text = self.supervision, state.context.text
        section = table["section"]
        chapter15 = [c for c in state.diagnoses() if c.code.upper().startswith("O")]
        incidental = any(p.search(text) for p in self.cues["incidental"]) and not chapter15
        for other in list(state.diagnoses()):
            key = compact(other.code)
            if key == compact(table["incidental_code"]) and not incidental:
                state.move_out(other)
                why = "a chapter 15 code is coded" if chapter15 else "the note does not say it is incidental"
                state.fire(self.name, [other], f"{other.code} is not coded: {why} (Guidelines {section})")
            elif key.startswith(compact(table["first_header"])[:3]) and (chapter15 or incidental):
                state.move_out(other)
                state.fire(
                    self.name, [other], f"{other.code} is not coded beside a chapter 15 code ({section})"
                )
        if incidental:
            self._add_code(state, table["incidental_code"], "incidental", section)
            return
        if chapter15 or not any(p.search(text) for p in self.cues["routine"]):
            return
        first = any(p.search(text) for p in self.cues["first_pregnancy"])
        header = table["first_header"] if first else table["other_header"]
        trimester = state.context.trimester
        digit = table["trimester_digit"].get(trimester or "", table["unspecified_digit"])
        self._add_code(state, f"{header}{digit}", "routine", section)

    def _add_code(self, state: RulesState, code: str, cue: str, section: str) -> None:
        entry = state.tabular.entry(code)
        if entry is None or not entry.billable or state.final(entry.code) is not None:
            return
        spans = [
            Evidence(document_id=d.document_id, start=m.start(), end=m.end(), text=m.group(0))
            for d in state.encounter.documents
            for p in self.cues[cue]
            for m in p.finditer(d.text)
        ]
        added = state.add_final(
            derived(
                entry.code,
                entry.title,
                self.confidence,
                spans[:2],
                f"rule {self.name}: {entry.title} (Guidelines {section})",
            )
        )
        state.fire(self.name, [added], f"{entry.code} ({entry.title}): {cue} pregnancy documented")

    def _choose(self, state: RulesState, header: str, suggestion: Any) -> str | None:
        targets = [
            t
            for t in state.tabular.targets(header)
            if not any(w in state.tabular.title(t).lower() for w in ("childbirth", "puerperium"))
        ]
        if not targets:
            return None
        words = set(state.context.words_for([suggestion])) | state.clause_words(suggestion.evidence)
        for word in list(words):
            words.update(self.implies.get(word, ()))
        given = title_terms(state.tabular.title(header)).required
        scored = []
        for code in targets:
            title = state.tabular.title(code)
            support = title_support(title, frozenset(words), given)
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
