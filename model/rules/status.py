"""Status, screening, immunization and follow-up Z codes from what the note states, and family history
codes from family mentions, as a coder adds them (ICD-10-CM Official Guidelines I.C.21.c).

The tables are data (resources/status_codes.json, one group per guideline section): phrases that state a
long-term drug (Z79), an acquired absence (Z89/Z90), a device the patient depends on (Z99), a screening
(Z12), an immunization (Z23) or a follow-up after completed cancer treatment (Z08); and lexicon concepts
(code prefixes) whose family mention gives a family history code (Z80-Z84).

A phrase adds its code only when, in the same clause, nothing before it negates or defers it ("not on
insulin", "consider starting insulin"), the clause does not stop it ("warfarin was discontinued"), the
group's use cue is there ("on", "mg", "s/p") and no negated, family or hypothetical mention covers it.
A family mention adds its family history code only when it is not negated or hypothetical; the condition
itself is never coded (the assertion rule keeps it out). Every added code carries the phrase or mention as
its evidence and the guideline section in its rationale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medcode.data.types import Evidence, Mention
from medcode.model.rules.context import around
from medcode.model.rules.refs import compact
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.terms import content_words

if TYPE_CHECKING:
    from medcode.model.rules.history import HistoryRule

RESOURCE = "status_codes.json"


@dataclass(frozen=True)
class PhraseEntry:
    group: str
    section: str
    code: str
    patterns: tuple[re.Pattern[str], ...]
    use_cues: tuple[re.Pattern[str], ...]
    requires_codes: tuple[str, ...]
    not_with: tuple[str, ...] = ()
    not_with_section: str = ""
    condition_not_coded: bool = False
    history_of_condition: bool = False
    """The condition named inside the phrase takes its personal history code (Z09 with Z87.01, I.C.21.c.8)."""


@dataclass(frozen=True)
class FamilyEntry:
    prefixes: tuple[str, ...]
    code: str


@dataclass(frozen=True)
class StatusTables:
    phrases: tuple[PhraseEntry, ...]
    family: tuple[FamilyEntry, ...]
    family_section: str
    blocked_before: tuple[re.Pattern[str], ...]
    blocked_clause: tuple[re.Pattern[str], ...]
    family_cues: tuple[re.Pattern[str], ...] = ()


def _compile(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def load_tables(data: dict[str, Any] | None = None) -> StatusTables:
    data = data if data is not None else load_resource(RESOURCE)
    phrases: list[PhraseEntry] = []
    for group in data["groups"]:
        cues = _compile(group.get("use_cues", []))
        for entry in group["entries"]:
            phrases.append(
                PhraseEntry(
                    group=group["name"],
                    section=group["section"],
                    code=entry["code"],
                    patterns=_compile(entry["patterns"]),
                    use_cues=cues,
                    requires_codes=tuple(group.get("requires_codes", [])),
                    not_with=tuple(compact(c) for c in entry.get("not_with", [])),
                    not_with_section=str(entry.get("not_with_section", "")),
                    condition_not_coded=bool(group.get("condition_not_coded", False)),
                    history_of_condition=bool(group.get("history_of_condition", False)),
                )
            )
    family = data["family_history"]
    return StatusTables(
        phrases=tuple(phrases),
        family=tuple(
            FamilyEntry(tuple(compact(c) for c in e["concepts"]), e["code"]) for e in family["entries"]
        ),
        family_section=family["section"],
        blocked_before=_compile(data["blocked_before"]),
        blocked_clause=_compile(data["blocked_clause"]),
        family_cues=_compile(data.get("family_cues", [])),
    )


class StatusCodesRule:
    """Adds the Z codes of resources/status_codes.json that the note states (see the module doc)."""

    name = "status_codes"

    def __init__(self, tables: StatusTables | None = None, confidence: float = 0.8) -> None:
        self.tables = tables if tables is not None else load_tables()
        self.confidence = confidence
        self._history: HistoryRule | None = None

    def __call__(self, state: RulesState) -> None:
        found: dict[str, tuple[PhraseEntry, list[Evidence]]] = {}
        for document in state.encounter.documents:
            for entry in self.tables.phrases:
                for pattern in entry.patterns:
                    for match in pattern.finditer(document.text):
                        if self._stated(state, document.document_id, document.text, match, entry):
                            span = Evidence(
                                document_id=document.document_id,
                                start=match.start(),
                                end=match.end(),
                                text=match.group(0),
                            )
                            found.setdefault(entry.code, (entry, []))[1].append(span)
        for code, (entry, spans) in found.items():
            if entry.condition_not_coded:
                self._not_coded(state, entry, spans)
            if entry.history_of_condition:
                self._history_of_condition(state, entry, spans)
            if entry.requires_codes and not self._has_any(state, entry.requires_codes):
                continue
            if entry.not_with and self._has_any(state, entry.not_with):
                state.fire(
                    self.name,
                    [c for c in state.diagnoses() if compact(c.code).startswith(entry.not_with)],
                    f"{code} is not coded beside {', '.join(entry.not_with)} (Guidelines {entry.not_with_section})",
                )
                continue
            self._add(state, code, spans, f"{entry.group.replace('_', ' ')}, Guidelines {entry.section}")
        self._family(state)

    def _not_coded(self, state: RulesState, entry: PhraseEntry, spans: list[Evidence]) -> None:
        """The condition named inside a screening / follow-up phrase ("prostate cancer screening") is what
        the encounter is for, not a condition the patient has: a code whose every naming mention lies
        inside such a phrase moves out."""
        for suggestion in list(state.diagnoses()):
            if suggestion.code.upper().startswith("Z"):
                continue
            mentions = state.context.mentions_of(suggestion)
            words = content_words(state.tabular.title(suggestion.code))
            named = [m for m in mentions if content_words(m.text) & words] or mentions
            if not named:
                continue
            if all(
                any(s.document_id == m.document_id and s.start <= m.start and m.end <= s.end for s in spans)
                for m in named
            ):
                state.move_out(suggestion)
                state.fire(
                    self.name,
                    [suggestion],
                    f'"{named[0].text}" is what the {entry.group.replace("_", " ")} is for, not a condition '
                    f"the patient has (Guidelines {entry.section})",
                    warning={suggestion.code: "status_codes:condition_not_present"},
                )

    def _history_of_condition(self, state: RulesState, entry: PhraseEntry, spans: list[Evidence]) -> None:
        """The healed condition a follow-up phrase names ("f/u after completed treatment for pneumonia")
        gets the code the index files it under History, personal (Z87.01), when exactly one entry applies:
        the follow-up code and the history code together tell the whole story (Guidelines I.C.21.c.8)."""
        from medcode.model.rules.history import HistoryRule

        if self._history is None:
            self._history = HistoryRule()
        for span in spans:
            for mention in state.context.present:
                if not (
                    mention.document_id == span.document_id
                    and span.start <= mention.start
                    and mention.end <= span.end
                ):
                    continue
                words = set(content_words(mention.text))
                for concept in mention.concepts:
                    words |= HistoryRule._code_words(state, concept)
                codes = sorted({e.code for e in self._history._match(words)})
                if len(codes) == 1:
                    evidence = Evidence(
                        document_id=mention.document_id,
                        start=mention.start,
                        end=mention.end,
                        text=mention.text,
                    )
                    self._add(
                        state,
                        codes[0],
                        [evidence],
                        f"history of the condition the {entry.group.replace('_', ' ')} is for, "
                        f"Guidelines {entry.section}",
                    )

    # phrases ---------------------------------------------------------------------------------------------
    def _stated(
        self, state: RulesState, document_id: str, text: str, match: re.Match[str], entry: PhraseEntry
    ) -> bool:
        start, end = around(text, match.start(), match.end())
        before, clause = text[start : match.start()], text[start:end]
        if any(p.search(before) for p in self.tables.blocked_before):
            return False
        if any(p.search(clause) for p in self.tables.blocked_clause):
            return False
        if entry.use_cues and not any(p.search(clause) for p in entry.use_cues):
            return False
        for mention in state.context.mentions:
            if (
                mention.document_id == document_id
                and mention.start < match.end()
                and match.start() < mention.end
                and (
                    mention.assertion.negated
                    or mention.assertion.hypothetical
                    or (mention.assertion.family and any(p.search(clause) for p in self.tables.family_cues))
                )
            ):  # a family flag where the clause names no relative ("FHx: ... Here for screening mammogram")
                # is the family scope spilling over a sentence end
                return False
        return True

    def _has_any(self, state: RulesState, prefixes: tuple[str, ...]) -> bool:
        wanted = tuple(compact(p) for p in prefixes)
        return any(compact(c.code).startswith(wanted) for c in state.diagnoses())

    # family history --------------------------------------------------------------------------------------
    def _family(self, state: RulesState) -> None:
        found: dict[str, list[Mention]] = {}
        for mention in state.context.mentions:
            assertion = mention.assertion
            if not assertion.family or assertion.negated or assertion.hypothetical:
                continue
            for concept in mention.concepts:
                entry = self._family_entry(concept)
                if entry is not None:
                    found.setdefault(entry.code, []).append(mention)
                    break
        for code, mentions in found.items():
            evidence = [
                Evidence(document_id=m.document_id, start=m.start, end=m.end, text=m.text) for m in mentions
            ]
            self._add(state, code, evidence, f"family history, Guidelines {self.tables.family_section}")

    def _family_entry(self, concept: str) -> FamilyEntry | None:
        key = compact(concept)
        return next((e for e in self.tables.family if key.startswith(e.prefixes)), None)

    # adding ----------------------------------------------------------------------------------------------
    def _add(self, state: RulesState, code: str, evidence: list[Evidence], why: str) -> None:
        if state.final(code) is not None:
            return
        entry = state.tabular.entry(code)
        if entry is None or not entry.billable:
            return
        quoted = ", ".join(f'"{e.text}"' for e in evidence[:3])
        added = state.add_final(
            derived(entry.code, entry.title, self.confidence, evidence, f"rule {self.name}: {why}")
        )
        state.fire(self.name, [added], f"{entry.code} ({entry.title}) from {quoted}: {why}")
