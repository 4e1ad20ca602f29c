"""History-of: a condition the note documents only as past history is not coded as an active condition
when the ICD-10-CM Alphabetic Index files it under "History, personal (of)"; the code the index gives
there (Z87.01 for pneumonia, Z85.3 for breast cancer, Z86.73 for stroke without residual deficits, I25.2
for an old myocardial infarction) is suggested instead.

The index entries are data (resources/history_of.json), generated from the index by

    python -m model.rules.history --data-dir ../shared/datasets   # rewrites resources/history_of.json

An entry applies to a code when the entry's words (the term and its parent terms under "History,
personal", grouping terms such as "disease or disorder" left out) are all words of the code's title, its
ancestors' titles and inclusion terms, or of the historical mentions under its evidence; words after
"with"/"without" in a term ("stroke without residual deficits") are qualifiers the note must state near
the mention. Conditions the index does not file there (hypertension, diabetes) stay coded: "history of
hypertension" is a chronic condition. A code whose only qualifier is missing moves out with the reason
"history_of:CODE" and the history code offered as a candidate: a coder decides (sequela or history).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.data.types import CodeSuggestion, Evidence, Mention
from medcode.model.rules.context import around, overlaps
from medcode.model.rules.refs import compact
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.terms import content_words, title_terms

if TYPE_CHECKING:
    from medcode.data.icd10cm import ICD10CM
    from medcode.data.icd10cm_index import IndexTerm

logger = logging.getLogger(__name__)

RESOURCE = "history_of.json"
_QUALIFIER = re.compile(r"\b(with|without)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<!\bs)\.(?:\s|$)|[;\n]")


@dataclass(frozen=True)
class HistoryEntry:
    """One "History, personal (of)" index entry: the words a condition must have, the qualifier words
    the note must state ("without residual deficits"), and the code the index gives."""

    term: str
    required: frozenset[str]
    qualifiers: frozenset[str]
    code: str


# --- the data file ---------------------------------------------------------------------------------------


def _split_term(text: str) -> tuple[str, str]:
    """'stroke without residual deficits' -> ('stroke', 'without residual deficits')."""
    match = _QUALIFIER.search(text)
    if match is None:
        return text, ""
    return text[: match.start()], text[match.start() :]


def entry_words(term: str, generic: Iterable[str] = ()) -> tuple[frozenset[str], frozenset[str]]:
    """(required words, qualifier words) of an entry's term (path parts joined with ' / ')."""
    required: set[str] = set()
    qualifiers: set[str] = set()
    for part in term.split(" / "):
        head, tail = _split_term(part)
        required |= content_words(head)
        qualifiers |= content_words(_QUALIFIER.sub(" ", tail))
    drop = set(generic)
    return frozenset(required - drop), frozenset(qualifiers - drop - required)


GENERIC_WORDS = (
    "disease",
    "disorder",
    "condition",
    "certain",
    "nec",
    "nos",
    "specified",
    "type",
    "female",
    "male",
)
"""Words that name no condition by themselves ("specified type NEC", "genital / female")."""


def _essential_remainder(nonessential: str) -> str:
    """Text of the index's modifier field outside parentheses: the flattened index sometimes carries the
    end of a term there ("urinary" + "(recurrent) (tract) infection(s)" -> "infection")."""
    return re.sub(r"\([^()]*\)", " ", nonessential).replace("(s)", "").strip()


def build_resource(
    terms: Iterable[IndexTerm],
    icd: ICD10CM,
    *,
    grouping_term: str = "disease or disorder",
    source: str = "ICD-10-CM Alphabetic Index",
) -> dict[str, Any]:
    """The history_of.json content from index terms: the "History, personal (of)" entries that give a
    code the tabular holds as billable, with their path below "personal".

    Left out, so that a chronic condition is never filed as history by a catch-all: the body-system
    groupings directly under "disease or disorder" ("... / respiratory system NEC" would take chronic
    respiratory failure), top-level "NEC" buckets ("infection NEC"), and entries whose own term names
    no condition ("specified NEC"). Below "disease or disorder" only the entry's own term is kept
    ("digestive system / peptic ulcer disease" -> "peptic ulcer disease")."""
    grouping = grouping_term.lower()
    entries: list[dict[str, str]] = []
    skipped: list[str] = []
    for term in terms:
        path = [" ".join(p.split()) for p in term.path]
        if len(path) < 3 or path[0].lower() != "history" or path[1].lower() != "personal":
            continue
        if not term.code:
            continue
        below = path[2:]
        leaf = " ".join(filter(None, (below[-1], _essential_remainder(term.nonessential))))
        leaf_words = content_words(_split_term(leaf)[0]) - set(GENERIC_WORDS)
        if not leaf_words and not _QUALIFIER.match(leaf):
            continue  # "specified NEC": names nothing beyond its parent
        if below[0].lower() == grouping:
            if len(below) <= 2:
                continue  # a body-system grouping
            parts = [leaf]
        else:
            if len(below) == 1 and re.search(r"\bNEC\b", below[0]):
                continue  # a catch-all bucket
            parts = [*below[:-1], leaf]
        code = term.code.rstrip("-").rstrip(".")
        entry = icd.get(code)
        if entry is None or not entry.billable:
            skipped.append(f"{' / '.join(below)} -> {term.code}")
            continue
        entries.append({"term": " / ".join(parts), "code": entry.code})
    unique = list({(e["term"], e["code"]): e for e in entries}.values())
    return {
        "description": (
            'Entries of the ICD-10-CM Alphabetic Index under "History, personal (of)": a condition documented '
            "only as past history is coded with the index's code (generated by python -m model.rules.history; "
            "body-system groupings, catch-all NEC buckets and codes the tabular does not hold as billable are "
            "left out)."
        ),
        "source": source,
        "fiscal_year": _fiscal_year(source),
        "generic_words": list(GENERIC_WORDS),
        "entries": sorted(unique, key=lambda e: (e["term"].lower(), e["code"])),
        "left_out": sorted(skipped),
    }


def _fiscal_year(source: str) -> str:
    match = re.search(r"20\d\d", source)
    return f"FY{match.group(0)}" if match else "unknown"


def load_entries(data: dict[str, Any] | None = None) -> list[HistoryEntry]:
    data = data if data is not None else load_resource(RESOURCE)
    generic = data.get("generic_words", [])
    out: list[HistoryEntry] = []
    for item in data["entries"]:
        required, qualifiers = entry_words(item["term"], generic)
        if required:
            out.append(HistoryEntry(item["term"], required, qualifiers, item["code"]))
    return out


# --- the rule --------------------------------------------------------------------------------------------


class HistoryRule:
    name = "history_of"

    def __init__(
        self,
        entries: list[HistoryEntry] | None = None,
        discount: float = 0.9,
        uncoded_confidence: float = 0.75,
    ) -> None:
        self.entries = entries if entries is not None else load_entries()
        self.uncoded_confidence = uncoded_confidence
        self.targets = {compact(e.code) for e in self.entries}
        excised = load_resource("excised_neoplasm.json")
        self.excised: dict[str, Any] = {
            "prefixes": tuple(compact(c) for c in excised["code_prefixes"]),
            **{
                k: [re.compile(p, re.IGNORECASE) for p in excised[k]]
                for k in ("treated", "no_disease", "active")
            },
        }
        self.discount = discount

    def __call__(self, state: RulesState) -> None:
        for suggestion in list(state.diagnoses()):
            if compact(suggestion.code) in self.targets or suggestion.code.upper().startswith("Z"):
                continue  # a history code itself: historical mentions are its support
            entry = state.tabular.entry(suggestion.code)
            if entry is None:
                continue
            code_words = self._code_words(state, suggestion.code)
            mentions = self._historical_only(state, suggestion, code_words)
            if not mentions and self._excised(state, suggestion):
                mentions = state.context.mentions_of(suggestion)  # treated and gone: history (I.C.2.d)
            if not mentions:
                continue
            words = set(code_words)
            for mention in mentions:
                words |= content_words(mention.text)
            found = self._match(words)
            if not found:
                continue  # the index does not file it under history: a chronic condition stays coded
            context = state.clause_words(mentions)
            full = [e for e in found if e.qualifiers <= context]
            codes = sorted({e.code for e in (full or found)})
            if full and len(codes) == 1:
                self._replace(state, suggestion, full[0])
            else:
                self._doubt(state, suggestion, codes)
        self._uncoded(state)

    def _uncoded(self, state: RulesState) -> None:
        """A past condition no suggested code stands on (a historical mention whose lexicon concept is an
        ICD-10-CM code) gets the history code the index files it under, when exactly one entry applies
        with its qualifiers stated; nothing when the same condition is also documented as current."""
        context = state.context
        covered = [e for c in state.diagnoses() for e in c.evidence]
        current = [m for m in context.present if not m.assertion.historical]
        for mention in context.present:
            if not mention.assertion.historical or mention.assertion.possible:
                continue
            if any(overlaps(e, mention) for e in covered):
                continue
            concepts = [c for c in mention.concepts if state.tabular.entry(c) is not None]
            if not concepts:
                continue
            names = content_words(mention.text)
            if any(content_words(m.text) == names or set(m.concepts) & set(concepts) for m in current):
                continue
            words = set(self._code_words(state, concepts[0])) | set(names)
            found = self._match(words)
            if not found:
                continue
            context_words = state.clause_words([mention])
            full = [e for e in found if e.qualifiers <= context_words]
            if len({e.code for e in full}) != 1 or len({e.code for e in found}) != 1:
                continue
            target = state.tabular.entry(full[0].code)
            if target is None or state.final(target.code) is not None:
                continue
            evidence = Evidence(
                document_id=mention.document_id, start=mention.start, end=mention.end, text=mention.text
            )
            added = state.add_final(
                derived(
                    target.code,
                    target.title,
                    self.uncoded_confidence,
                    [evidence],
                    f'personal history code the index gives for "{full[0].term}" (History, personal)',
                )
            )
            state.fire(
                self.name,
                [added],
                f'"{mention.text}" is documented as past history; the index files "{full[0].term}" under '
                f"History, personal: coded {target.code} ({target.title})",
            )

    def _excised(self, state: RulesState, suggestion: CodeSuggestion) -> bool:
        """A malignancy the note states as excised or treated, with no disease or treatment left, in the
        sentence of its evidence, and no current treatment anywhere (resources/excised_neoplasm.json)."""
        table = self.excised
        if not compact(suggestion.code).startswith(table["prefixes"]):
            return False
        if any(p.search(state.context.text) for p in table["active"]):
            return False
        for evidence in suggestion.evidence:
            text = state.document_text(evidence.document_id)
            if text is None:
                continue
            start, end = around(text, evidence.start, evidence.end, _SENTENCE_END)
            sentence = text[start:end]
            if any(p.search(sentence) for p in table["treated"]) and any(
                p.search(sentence) for p in table["no_disease"]
            ):
                return True
        return False

    # support ---------------------------------------------------------------------------------------------
    @staticmethod
    def _historical_only(
        state: RulesState, suggestion: CodeSuggestion, code_words: frozenset[str]
    ) -> list[Mention]:
        """The historical mentions of the condition under the code's evidence, when every present mention
        there that names the condition (shares words with the code's titles; else the one mention the
        span covers) is historical, and no current mention elsewhere names the same thing; else []."""
        context = state.context
        historical: list[Mention] = []
        for evidence in suggestion.evidence:
            hits = [m for m in context.present if overlaps(evidence, m)]
            relevant = [m for m in hits if content_words(m.text) & code_words]
            if not relevant and len(hits) == 1:
                relevant = hits
            if not relevant:
                return []  # nothing under this span names the condition: nothing says it is past
            if any(not m.assertion.historical for m in relevant):
                return []
            historical.extend(relevant)
        if not historical:
            return []
        names = {frozenset(content_words(m.text)) for m in historical}
        target = compact(suggestion.code)
        for mention in context.present:
            if mention.assertion.historical:
                continue
            if frozenset(content_words(mention.text)) in names or any(
                compact(c) == target for c in mention.concepts
            ):
                return []  # the same condition is also documented as current
        return historical

    @staticmethod
    def _code_words(state: RulesState, code: str) -> frozenset[str]:
        """Words of the code's title, its ancestors' titles and their inclusion terms."""
        tabular = state.tabular
        words: set[str] = set()
        entry = tabular.entry(code)
        codes = [entry.code] if entry is not None else []
        for item_code in [*codes, *tabular.ancestors(code)]:
            item = tabular.entry(item_code)
            if item is None:
                continue
            words |= title_terms(item.title).required
            for inclusion in item.inclusion_terms:
                words |= title_terms(inclusion).required
        return frozenset(words)

    def _match(self, words: set[str]) -> list[HistoryEntry]:
        """The most specific entries whose required words the condition has (most words first)."""
        matched = [e for e in self.entries if e.required <= words]
        if not matched:
            return []
        best = max(len(e.required) for e in matched)
        return [e for e in matched if len(e.required) == best]

    # changes --------------------------------------------------------------------------------------------
    def _replace(self, state: RulesState, suggestion: CodeSuggestion, found: HistoryEntry) -> None:
        target = state.tabular.entry(found.code)
        if target is None:
            return
        added = state.replace(
            suggestion,
            derived(
                target.code,
                target.title,
                suggestion.confidence * self.discount,
                list(suggestion.evidence),
                f'personal history code the index gives for "{found.term}" (History, personal)',
            ),
        )
        state.fire(
            self.name,
            [added, suggestion],
            f'{suggestion.code} is documented only as past history; the index files "{found.term}" under '
            f"History, personal: coded {target.code} ({target.title})",
            warning={
                suggestion.code: f"history_of:{target.code}",
                added.code: f"history_of:{suggestion.code}",
            },
        )

    def _doubt(self, state: RulesState, suggestion: CodeSuggestion, codes: list[str]) -> None:
        state.move_out(suggestion)
        offered: list[str] = []
        for code in codes:
            target = state.tabular.entry(code)
            if target is None:
                continue
            state.add_candidate(
                derived(
                    target.code,
                    target.title,
                    suggestion.confidence * self.discount * self.discount,
                    list(suggestion.evidence),
                    f"personal history code the index gives for {suggestion.code}'s condition",
                )
            )
            offered.append(target.code)
        state.fire(
            self.name,
            [suggestion],
            f"{suggestion.code} is documented only as past history; the index files it under History, "
            f"personal, but the note does not settle which code ({', '.join(offered)} offered)",
            reason=f"history_of:{suggestion.code}",
            warning={suggestion.code: "history_of:unsettled"},
        )


# --- generating the data file ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Regenerate resources/history_of.json from the ICD-10-CM index."
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="the datasets folder holding the index")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: the packaged resource)")
    args = parser.parse_args(argv)
    from medcode.data.icd10cm import load_icd10cm
    from medcode.data.icd10cm_index import find_index_files, load_index

    files = find_index_files(args.data_dir)
    terms = load_index(args.data_dir)
    source = f"ICD-10-CM Alphabetic Index ({files['index'].name})"
    data = build_resource(terms, load_icd10cm(), source=source)
    out = args.out or Path(__file__).with_name("resources") / RESOURCE
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(data['entries'])} entries ({len(data['left_out'])} left out) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
