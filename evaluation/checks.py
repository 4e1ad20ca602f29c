"""Output checks the evaluation reports besides accuracy: clinical safety and the coding rules (issue 10).

- Safety: every suggested code's evidence spans are checked against the mentions the text pipeline finds
  (re-extracted here). A code whose evidence overlaps only negated, family or hypothetical mentions is
  counted: it should never happen. Codes with no evidence at all are counted on their own.
- Rules: in the final output (the suggested codes), non-billable ICD-10-CM headers, Excludes1 pairs both
  present, codes missing a required 7th character, and rule firings by rule (the codes' `warnings`).

Both take the terminology and the extractor as arguments, so the tests can hand in small fakes.
"""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from data.types import CodeSuggestion, Encounter, Mention, Result, Task

log = logging.getLogger(__name__)

Extractor = Callable[[str, str], list[Mention]]
"""(text, document_id) -> mentions, as `model.text.get_pipeline().extract`."""

UNSAFE_KINDS = ("negated", "family", "hypothetical")


class CodeEntryLike(Protocol):
    code: str
    parent: str | None
    billable: bool
    excludes1_refs: Any
    seventh_chars: Any


class TerminologyLike(Protocol):
    def get(self, code: str) -> Any: ...


# --- loading the collaborators (both are optional: the checks report checked=False without them) -------


def default_extractor() -> Extractor | None:
    """The project's text pipeline (`model.text.get_pipeline()`), or None when it cannot be imported."""
    try:
        module = importlib.import_module("model.text")
        get_pipeline = getattr(module, "get_pipeline", None)
        pipeline = get_pipeline() if get_pipeline is not None else None
    except ImportError as exc:
        log.warning("the text pipeline cannot be loaded (%s): the safety check is skipped", exc)
        return None
    if pipeline is None:
        log.warning("model.text.get_pipeline is not available: the safety check is skipped")
        return None

    def extract(text: str, document_id: str) -> list[Mention]:
        return list(pipeline.extract(text, document_id=document_id))

    return extract


def default_terminology() -> TerminologyLike | None:
    """The ICD-10-CM tabular, or None when `data.icd10cm` is not available."""
    try:
        from data.icd10cm import load_icd10cm
    except ImportError:
        log.warning("data.icd10cm is not available: the coding-rule checks are skipped")
        return None
    return load_icd10cm()  # type: ignore[no-any-return]


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


def _dotted(raw: str) -> str:
    return f"{raw[:3]}.{raw[3:]}" if len(raw) > 3 else raw


def _lookup(terminology: TerminologyLike, code: str) -> Any:
    try:
        return terminology.get(_dotted(code.upper().replace(".", "")))
    except Exception:  # an odd code string is "not found", whatever the lookup raises
        return None


def requires_seventh_character(terminology: TerminologyLike, code: str) -> bool:
    """True when the code is shorter than 7 characters and its category defines 7th characters."""
    raw = code.strip().upper().replace(".", "")
    if len(raw) >= 7:
        return False
    for n in range(len(raw), 2, -1):
        entry = _lookup(terminology, raw[:n])
        if entry is not None:
            return bool(getattr(entry, "seventh_chars", None))
    return False


def pattern_matches(pattern: str, code: str) -> bool:
    """Does a note's code pattern ("E10", "E11.2-", "N18.1-N18.6") cover `code` (itself or a descendant)?

    Same semantics as `data.icd10cm.ref_covers`: a prefix, or a range compared on the range ends' lengths.
    """
    target = code.strip().upper().replace(".", "")
    ref = pattern.strip().upper()
    if not ref.rstrip("-"):
        return False
    if "-" in ref.rstrip("-"):
        first, last = (part.rstrip("-").replace(".", "") for part in ref.split("-", 1))
        return first <= target[: len(first)] and target[: len(last)] <= last
    return target.startswith(ref.rstrip("-").rstrip(".").replace(".", ""))


def excludes1_refs(terminology: TerminologyLike, code: str, max_depth: int = 12) -> list[str]:
    """The Excludes1 references that apply to the code: its own, its ancestors', and (when the terminology
    offers `applicable_refs`) its block's and chapter's."""
    entry = _lookup(terminology, code)
    if entry is None:
        return []
    applicable = getattr(terminology, "applicable_refs", None)
    if callable(applicable):
        try:
            return list(applicable(entry.code, "excludes1"))
        except Exception:  # fall back to walking the parents
            log.debug("applicable_refs failed for %s", entry.code)
    refs: list[str] = []
    depth = 0
    while entry is not None and depth < max_depth:
        refs.extend(getattr(entry, "excludes1_refs", None) or [])
        parent = getattr(entry, "parent", None)
        entry = _lookup(terminology, parent) if parent else None
        depth += 1
    return refs


def excludes1_pairs(terminology: TerminologyLike, codes: Iterable[str]) -> list[tuple[str, str]]:
    """The unordered pairs of distinct codes where one's Excludes1 note covers the other."""
    unique = sorted(set(codes))
    refs = {c: excludes1_refs(terminology, c) for c in unique}
    pairs = []
    for i, a in enumerate(unique):
        for b in unique[i + 1 :]:
            if any(pattern_matches(p, b) for p in refs[a]) or any(pattern_matches(p, a) for p in refs[b]):
                pairs.append((a, b))
    return pairs


def rule_name(warning: str) -> str:
    """'excludes1:E11.9' -> 'excludes1'."""
    return warning.split(":", 1)[0].strip() or "unnamed"


def rules_check(task: Task, results: Sequence[Result], terminology: TerminologyLike | None) -> dict[str, Any]:
    """Rule violations left in the final output and rule firings by rule, for the suggested codes."""
    firings: Counter[str] = Counter()
    with_warnings = 0
    non_billable = excl_pairs = missing_7th = unknown = 0
    examples: dict[str, list[str]] = {
        "non_billable": [],
        "excludes1_pairs": [],
        "missing_seventh_character": [],
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
        for c in codes:
            entry = _lookup(terminology, c.code)
            if entry is None:
                unknown += 1
            elif not getattr(entry, "billable", True):
                non_billable += 1
                _example(examples["non_billable"], c.code)
            if requires_seventh_character(terminology, c.code):
                missing_7th += 1
                _example(examples["missing_seventh_character"], c.code)
        pairs = excludes1_pairs(terminology, [c.code for c in codes])
        excl_pairs += len(pairs)
        for a, b in pairs:
            _example(examples["excludes1_pairs"], f"{a}+{b}")
    out: dict[str, Any] = {
        "checked": check_terms,
        "rule_firings": dict(sorted(firings.items())),
        "codes_with_warnings": with_warnings,
    }
    if task == "diagnosis":
        out.update(
            {
                "non_billable": non_billable if check_terms else None,
                "excludes1_pairs": excl_pairs if check_terms else None,
                "missing_seventh_character": missing_7th if check_terms else None,
                "not_in_code_set": unknown if check_terms else None,
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
