"""Output checks the evaluation reports besides accuracy: clinical safety and the coding rules (issue 10).

- Safety: every suggested code's evidence spans are checked against the mentions the text pipeline finds
  (re-extracted here). A code whose evidence overlaps only negated, family or hypothetical mentions is
  counted: it should never happen. Codes with no evidence at all are counted on their own.
- Rules: in the final output (the suggested codes), non-billable ICD-10-CM codes, Excludes1 pairs both
  present, codes missing a required 7th character, codes the release does not know, and rule firings by
  rule (the codes' `warnings`). The audit is the rules step's own (`model.rules.audit_codes`), so the
  evaluation and the rules can never disagree on what an Excludes1 pair is.

Both take the terminology and the extractor as arguments: the safety check can take a small fake
extractor; the rules check takes an ICD-10-CM release (`data.icd10cm.load_icd10cm()`) or a
`model.rules.RuleTabular` over one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from medcode.data.types import CodeSuggestion, Encounter, Mention, Result, Task

if TYPE_CHECKING:
    from medcode.model.rules import RuleTabular

log = logging.getLogger(__name__)

Extractor = Callable[[str, str], list[Mention]]
"""(text, document_id) -> mentions, as `medcode.model.text.get_pipeline().extract`."""

UNSAFE_KINDS = ("negated", "family", "hypothetical")


class TerminologyLike(Protocol):
    def get(self, code: str) -> Any: ...


# --- loading the collaborators ---------------------------------------------------------------------------


def default_extractor(data_dir: Path | None = None) -> Extractor:
    """The project's text pipeline (`model.text.get_pipeline(data_dir)`: the full lexicon of a datasets
    folder; None: the packaged sources only)."""
    from medcode.model.text.sources import get_pipeline

    pipeline = get_pipeline(data_dir)

    def extract(text: str, document_id: str) -> list[Mention]:
        return list(pipeline.extract(text, document_id=document_id))

    return extract


def default_terminology() -> TerminologyLike:
    """The ICD-10-CM tabular."""
    from medcode.data.icd10cm import load_icd10cm

    return load_icd10cm()


# --- safety ---------------------------------------------------------------------------------------------


def _overlaps(start: int, end: int, mention: Mention) -> bool:
    if start == end:
        return mention.start <= start < mention.end
    return mention.start < end and start < mention.end


def _unsafe_kinds(mention: Mention) -> list[str]:
    a = mention.assertion
    return [k for k in UNSAFE_KINDS if getattr(a, k)]


def classify_evidence(
    suggestion: CodeSuggestion, encounter: Encounter, mentions_of: Callable[[str], list[Mention]]
) -> tuple[str, list[str]]:
    """'no_evidence', 'invalid_evidence', 'no_mention', 'supported' or 'unsafe' (with the assertion kinds).

    Supported: at least one evidence span overlaps a mention that may support a code. Unsafe: the spans
    overlap mentions, and every one of them is negated, family or hypothetical.
    """
    if not suggestion.evidence:
        return "no_evidence", []
    overlapping: list[Mention] = []
    invalid = 0
    for ev in suggestion.evidence:
        try:
            text = encounter.document(ev.document_id).text
        except KeyError:
            invalid += 1
            continue
        if ev.end > len(text):
            invalid += 1
            continue
        overlapping.extend(m for m in mentions_of(ev.document_id) if _overlaps(ev.start, ev.end, m))
    if any(m.assertion.is_present for m in overlapping):
        return "supported", []
    if overlapping:
        kinds = sorted({k for m in overlapping for k in _unsafe_kinds(m)})
        return "unsafe", kinds
    if invalid == len(suggestion.evidence):
        return "invalid_evidence", []
    return "no_mention", []


class _MentionsOf:
    """document_id -> the mentions of that document of one encounter, extracted once."""

    def __init__(self, encounter: Encounter, extractor: Extractor) -> None:
        self.encounter = encounter
        self.extractor = extractor
        self.cache: dict[str, list[Mention]] = {}

    def __call__(self, document_id: str) -> list[Mention]:
        if document_id not in self.cache:
            self.cache[document_id] = self.extractor(self.encounter.document(document_id).text, document_id)
        return self.cache[document_id]


def cached(extractor: Extractor) -> Extractor:
    """The same extractor, remembering each (text, document id) it has seen (both tasks share the work)."""
    memo: dict[tuple[str, str], list[Mention]] = {}

    def extract(text: str, document_id: str) -> list[Mention]:
        key = (document_id, text)
        if key not in memo:
            memo[key] = extractor(text, document_id)
        return memo[key]

    return extract


def safety_check(
    task: Task,
    encounters: Sequence[Encounter],
    results: Sequence[Result],
    extractor: Extractor | None,
) -> dict[str, Any]:
    """Counts over the suggested codes of `task`; `negated_family_hypothetical_only` should be 0."""
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    suggested = 0
    for encounter, result in zip(encounters, results, strict=True):
        codes = [c for c in result.codes if c.task == task]
        suggested += len(codes)
        if extractor is None:
            counts.update("no_evidence" for c in codes if not c.evidence)
            continue
        mentions_of = _MentionsOf(encounter, extractor)
        for code in codes:
            verdict, why = classify_evidence(code, encounter, mentions_of)
            counts[verdict] += 1
            kinds.update(why)
    checked = extractor is not None
    return {
        "checked": checked,
        "suggested_codes": suggested,
        "negated_family_hypothetical_only": counts["unsafe"] if checked else None,
        "by_assertion": {k: kinds[k] for k in UNSAFE_KINDS} if checked else None,
        "no_evidence": counts["no_evidence"],
        "evidence_without_mention": counts["no_mention"] if checked else None,
        "invalid_evidence": counts["invalid_evidence"] if checked else None,
        "supported": counts["supported"] if checked else None,
    }


# --- coding rules ---------------------------------------------------------------------------------------


_TABULARS: dict[int, RuleTabular] = {}


def rule_tabular(terminology: TerminologyLike) -> RuleTabular:
    """The rules' view of an ICD-10-CM release (built once per release object)."""
    from medcode.model.rules import RuleTabular

    if isinstance(terminology, RuleTabular):
        return terminology
    view = _TABULARS.get(id(terminology))
    if view is None or view.icd is not terminology:
        view = RuleTabular(terminology)  # type: ignore[arg-type]
        _TABULARS[id(terminology)] = view
    return view


def audit_final_codes(codes: Iterable[str], terminology: TerminologyLike) -> dict[str, list[str]]:
    """One encounter's final ICD-10-CM codes audited with the rules' own checks
    (`model.rules.audit_codes`: one implementation of Excludes1, billable and 7th-character tests).

    Returns lists: excludes1_pairs ("A+B"), non_billable (codes the release holds but not as billable),
    missing_seventh_character, not_in_code_set (codes the release does not know)."""
    from medcode.model.rules import audit_codes

    tabular = rule_tabular(terminology)
    audit = audit_codes(codes, tabular)
    unknown = [c for c in audit.non_billable if tabular.entry(c) is None]
    return {
        "excludes1_pairs": [f"{a}+{b}" for a, b in audit.excludes1_pairs],
        "non_billable": [c for c in audit.non_billable if c not in unknown],
        "missing_seventh_character": list(audit.missing_seventh),
        "not_in_code_set": unknown,
    }


def rule_name(warning: str) -> str:
    """'excludes1:E11.9' -> 'excludes1'."""
    return warning.split(":", 1)[0].strip() or "unnamed"


def rules_check(task: Task, results: Sequence[Result], terminology: TerminologyLike | None) -> dict[str, Any]:
    """Rule violations left in the final output and rule firings by rule, for the suggested codes."""
    firings: Counter[str] = Counter()
    with_warnings = 0
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {
        "non_billable": [],
        "excludes1_pairs": [],
        "missing_seventh_character": [],
        "not_in_code_set": [],
    }
    check_terms = terminology is not None and task == "diagnosis"
    for result in results:
        codes = [c for c in result.codes if c.task == task]
        for c in codes:
            if c.warnings:
                with_warnings += 1
                firings.update(rule_name(w) for w in c.warnings)
        if not check_terms:
            continue
        assert terminology is not None
        found = audit_final_codes([c.code for c in codes], terminology)
        for kind, items in found.items():
            counts[kind] += len(items)
            for item in items:
                _example(examples[kind], item)
    out: dict[str, Any] = {
        "checked": check_terms,
        "rule_firings": dict(sorted(firings.items())),
        "codes_with_warnings": with_warnings,
    }
    if task == "diagnosis":
        out.update(
            {
                "non_billable": counts["non_billable"] if check_terms else None,
                "excludes1_pairs": counts["excludes1_pairs"] if check_terms else None,
                "missing_seventh_character": counts["missing_seventh_character"] if check_terms else None,
                "not_in_code_set": counts["not_in_code_set"] if check_terms else None,
                "examples": examples if check_terms else None,
            }
        )
    return out


def _example(bucket: list[str], item: str, limit: int = 10) -> None:
    if len(bucket) < limit and item not in bucket:
        bucket.append(item)


def routing_summary(results: Sequence[Result]) -> dict[str, Any]:
    """How the model routed the encounters: auto-accept share and the reasons for review, by kind."""
    n = len(results)
    auto = sum(1 for r in results if r.routing.decision == "auto_accept")
    reasons: Counter[str] = Counter(rule_name(reason) for r in results for reason in r.routing.reasons)
    return {
        "auto_accepted": auto / n if n else 0.0,
        "n_auto_accepted": auto,
        "reasons": dict(reasons.most_common()),
    }
