"""Checks on a review item's live code set: what finalize refuses and what each card warns about.

The checks run over the codes the decisions keep (pending, accepted, added, replacements), after every
decision and at finalize, with the coding rules of `model.rules`:

- the code-set audit (`audit_codes`): Excludes1 pairs, non-billable ICD-10-CM codes (headers, codes the
  release does not hold), codes missing their 7th character;
- an ICD-10-PCS code shorter than 7 characters (a table prefix: a claim needs all seven);
- a category beside its own child (H16.4 with H16.443);
- the age/sex edits (`AgeSexRule`) against the encounter's patient;
- a code resting only on negated, family or hypothetical mentions (`NoteContext.evidence_all_absent`),
  or only on historical ones (history codes such as Z87.01 aside);
- evidence that is a label followed by a measurement ("Tuberculosis: 140/100"), until a coder accepts the
  code explicitly;
- a suggestion without a decision.

A problem is either fixable only (an incomplete or non-billable code, a category beside its child, an
undecided code: nothing invalid is ever final) or may be overridden at finalize with a reason the audit
keeps (a clinical judgement: Excludes1 exceptions, age/sex edits, the text pipeline's assertion).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from medcode.data.types import CodeSuggestion, Encounter, Evidence, Mention
from medcode.model.rules import RuleTabular, audit_codes
from medcode.model.rules.age_sex import AgeSexRule
from medcode.model.rules.context import NoteContext, overlaps
from medcode.model.rules.state import RulesState
from medcode.model.rules.terms import content_words
from medcode.serving.services.codes import normalize_key

if TYPE_CHECKING:
    from medcode.model.base import Coder
    from medcode.model.text.pipeline import TextPipeline
    from medcode.serving.services.review_state import CodeState

logger = logging.getLogger(__name__)

MentionSource = Callable[[Encounter], Sequence[Mention] | None]
"""The mentions of an encounter's note with their assertions; None when the text pipeline is missing."""

FIX_ONLY = frozenset(
    {"non_billable", "missing_7th_character", "incomplete_code", "category_with_child", "undecided"}
)
"""Problems no reason can override: the code set must change (or the code must be decided)."""

_HISTORY_TITLE = re.compile(r"\b(history|old|sequela|sequelae)\b", re.IGNORECASE)
_MEASUREMENT = re.compile(
    r"^[^\n:=]{0,60}?[:=]\s*[<>~]?\s*\d+(?:[.,]\d+)?(?:\s*/\s*\d+(?:[.,]\d+)?)?\s*"
    r"(?:mm\s?hg|%|bpm|/min|mg/dl|mmol/l|kg|cm|°?[cf])?\s*[.;,]?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the live code set."""

    kind: str
    codes: tuple[str, ...]
    message: str

    @property
    def key(self) -> str:
        """Stable name of the problem ("excludes1:N39.41|R32"), what an override names."""
        return f"{self.kind}:{'|'.join(self.codes)}"

    @property
    def overridable(self) -> bool:
        return self.kind not in FIX_ONLY


_tabular_lock = threading.Lock()


def rule_tabular() -> RuleTabular:
    """The rules' view of the packaged ICD-10-CM release, built once: concurrent first callers (several
    coders' first decisions after a restart) wait for one build instead of each building it."""
    with _tabular_lock:
        return _build_rule_tabular()


@lru_cache(maxsize=1)
def _build_rule_tabular() -> RuleTabular:
    from medcode.data.icd10cm import load_icd10cm

    return RuleTabular(load_icd10cm())


@lru_cache(maxsize=1)
def _age_sex_rule() -> AgeSexRule:
    return AgeSexRule()


def note_mentions(encounter: Encounter, pipeline: TextPipeline | None = None) -> Sequence[Mention] | None:
    """Mentions the coder UI shows: from `pipeline` (the serving model's, `Coder.pipeline`), else from the
    installed text pipeline (None when it cannot be loaded)."""
    from medcode.serving.ui.annotate import annotate

    annotations = annotate(encounter.encounter_id, encounter.documents, pipeline)
    if not annotations.mentions_available:
        return None
    return [m for doc in annotations.documents for m in doc.mentions]


def model_mentions(model: Callable[[], Coder]) -> MentionSource:
    """The mention source of the serving model: its own pipeline's mentions, the model taken at each call
    (a newly promoted champion's pipeline at once)."""
    return lambda encounter: note_mentions(encounter, model().pipeline)


def _suggestion(code: CodeState) -> CodeSuggestion:
    return CodeSuggestion(
        system=code.system,  # type: ignore[arg-type]
        code=code.code,
        description=code.description,
        confidence=code.confidence if code.confidence is not None else 1.0,
        evidence=list(code.evidence),
    )


def _title(code: CodeState) -> str:
    if code.system == "ICD-10-CM":
        return rule_tabular().title(code.code) or code.description
    return code.description


def _historical_only(
    evidence: Sequence[Evidence], mentions: Sequence[Mention], words: frozenset[str]
) -> bool:
    """Every evidence span falls on historical mentions (those sharing the title's words, if any do)."""
    if not evidence:
        return False
    for span in evidence:
        hits = [m for m in mentions if overlaps(span, m)]
        relevant = [m for m in hits if content_words(m.text) & words] if words else []
        hits = relevant or hits
        if not hits or not all(m.assertion.historical for m in hits):
            return False
    return True


def _measurement_only(evidence: Sequence[Evidence], encounter: Encounter) -> bool:
    """Every evidence span is a label followed by a number on its line ("Tuberculosis: 140/100")."""
    if not evidence:
        return False
    for span in evidence:
        try:
            text = encounter.document(span.document_id).text
        except KeyError:
            return False
        line_end = text.find("\n", span.end)
        rest = text[span.start : len(text) if line_end < 0 else line_end]
        if not _MEASUREMENT.match(rest):
            return False
    return True


def check_codes(
    codes: Sequence[CodeState],
    encounter: Encounter,
    mentions: Sequence[Mention] | None,
    *,
    accept_undecided: bool = False,
) -> list[Problem]:
    """Every problem of the codes an item keeps, in a stable order."""
    kept = [c for c in codes if c.kept]
    problems: list[Problem] = []
    tabular = rule_tabular()

    undecided = [c.code for c in kept if c.status == "pending"]
    if undecided and not accept_undecided:
        listed = ", ".join(undecided)
        problems.append(
            Problem(
                "undecided",
                tuple(undecided),
                f"{len(undecided)} code{'s have' if len(undecided) > 1 else ' has'} no decision: {listed}; "
                "accept or reject each, or finalize with accept_undecided",
            )
        )

    diagnoses = [c.code for c in kept if c.system == "ICD-10-CM"]
    audit = audit_codes(diagnoses, tabular)
    for code in audit.non_billable:
        if tabular.entry(code) is None:
            message = f"{code} is not a code of {tabular.version}"
        else:
            message = f"{code} is a category header, not billable: choose a code below it"
        problems.append(Problem("non_billable", (code,), message))
    for code in audit.missing_seventh:
        problems.append(
            Problem("missing_7th_character", (code,), f"{code} needs its 7th character (e.g. A, D or S)")
        )
    for first, second in audit.excludes1_pairs:
        problems.append(
            Problem(
                "excludes1",
                (first, second),
                f"Excludes1: {first} and {second} are not coded together; remove one or override with a reason",
            )
        )
    for i, first in enumerate(diagnoses):
        for second in diagnoses[i + 1 :]:
            parent, child = (first, second) if tabular.is_ancestor(first, second) else (second, first)
            if tabular.is_ancestor(parent, child):
                problems.append(
                    Problem(
                        "category_with_child",
                        (parent, child),
                        f"{parent} is the category of {child}: keep only the specific code",
                    )
                )
    for item in kept:
        if item.system == "ICD-10-PCS" and len(normalize_key(item.code)) != 7:
            problems.append(
                Problem(
                    "incomplete_code",
                    (item.code,),
                    f"{item.code} is an ICD-10-PCS table prefix ({len(normalize_key(item.code))} of 7 "
                    "characters): complete it",
                )
            )

    kept_cm = [c for c in kept if c.system == "ICD-10-CM"]
    if kept_cm and (encounter.patient.age is not None or encounter.patient.sex is not None):
        state = RulesState.start(encounter, [], [_suggestion(c) for c in kept_cm], [], tabular)
        _age_sex_rule()(state)
        for firing in state.firings:
            problems.append(Problem("age_sex", firing.codes, f"{', '.join(firing.codes)}: {firing.message}"))

    context = NoteContext(encounter=encounter, mentions=list(mentions)) if mentions is not None else None
    for item in kept:
        if not item.evidence:
            continue
        title = _title(item)
        if context is not None and mentions is not None:
            if context.evidence_all_absent(_suggestion(item), title) and "history" not in title.lower():
                problems.append(
                    Problem(
                        "absent_evidence",
                        (item.code,),
                        f"{item.code} rests only on negated, family or hypothetical mentions",
                    )
                )
                continue
            if not _HISTORY_TITLE.search(title) and _historical_only(
                item.evidence, mentions, content_words(title)
            ):
                problems.append(
                    Problem(
                        "historical_evidence",
                        (item.code,),
                        f"{item.code} rests only on historical mentions: code a history (Z) code, or override",
                    )
                )
                continue
        if item.status != "accepted" and _measurement_only(item.evidence, encounter):
            problems.append(
                Problem(
                    "doubtful_evidence",
                    (item.code,),
                    f"the evidence of {item.code} is a label followed by a measurement (a value, not the "
                    "condition?): check the note, then accept or reject it",
                )
            )
    return problems


def problems_by_code(problems: Sequence[Problem]) -> dict[str, list[Problem]]:
    """Each code's problems (a pair's problem under both codes); 'undecided' is item-level only."""
    out: dict[str, list[Problem]] = {}
    for problem in problems:
        if problem.kind == "undecided":
            continue
        for code in problem.codes:
            out.setdefault(normalize_key(code), []).append(problem)
    return out
