"""The rules' reading of the ICD-10-CM tabular, computed once per code and cached.

The code knowledge itself (entries, the placeholder X, 7th characters, headers, billable targets below a
header, the notes applying to a code) is the data package's (`data.icd10cm.ICD10CM`, behind
`data.codesystems.CodeSets`); this adapter caches it per code for the rules' hot loops and adds what only
the rules need: Excludes1 references with the concept a note links to, code-first / use-additional notes
grouped into mandatory or optional instructions (markers from `resources/code_notes.json`), and the
billable codes a rule pattern (`rules.refs.CodePattern`, with its qualifiers) covers.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from medcode.model.rules.refs import CodePattern, compact, parse_patterns, patterns_of
from medcode.model.rules.resources import load_resource
from medcode.model.rules.terms import content_words, title_terms

if TYPE_CHECKING:
    from medcode.data.icd10cm import ICD10CM, CodeEntry


@dataclass(frozen=True)
class ExcludedRef:
    """An Excludes1 reference. `head` holds the words of a linked concept ("somnolence, stupor and coma
    in diabetes (E08-E13)" -> somnolence, stupor, coma): the note then excludes only codes of the range
    whose titles document that concept (E11.641 "... with coma"), not every code of it (E11.9)."""

    pattern: CodePattern
    head: frozenset[str] | None = None


@dataclass(frozen=True)
class NoteGroup:
    """One code-first or use-additional instruction: its text, the patterns it names, and whether it is
    mandatory (a manifestation's 'code first underlying disease') or applies only 'if applicable'."""

    where: str
    text: str
    patterns: tuple[CodePattern, ...]
    mandatory: bool


class RuleTabular:
    """Cached rule-oriented views of one ICD-10-CM release."""

    def __init__(self, icd: ICD10CM) -> None:
        self.icd = icd
        self.version: str = icd.version
        markers = load_resource("code_notes.json")
        self._optional = tuple(m.lower() for m in markers["optional_markers"])
        self._mandatory_titles = tuple(m.lower() for m in markers["manifestation_title_markers"])
        self._additional_mandatory = tuple(m.lower() for m in markers["use_additional_mandatory_markers"])
        self._sorted: list[str] | None = None
        self._entry = lru_cache(maxsize=65536)(self._resolve)
        self._excl = lru_cache(maxsize=65536)(self._excludes1_patterns)
        self._groups = lru_cache(maxsize=65536)(self._note_groups)
        self._targets = lru_cache(maxsize=16384)(self._target_codes)

    # lookup -------------------------------------------------------------------------------------------
    def entry(self, code: str) -> CodeEntry | None:
        """The tabular entry of a code; "S01.20X" (placeholder without 7th character) -> S01.20."""
        return self._entry(code)

    def _resolve(self, code: str) -> CodeEntry | None:
        return self.icd.resolve(code)

    def title(self, code: str) -> str:
        entry = self.entry(code)
        return entry.title if entry is not None else ""

    def ancestors(self, code: str) -> list[str]:
        entry = self.entry(code)
        return [] if entry is None else self.icd.parents(entry.code)

    def is_ancestor(self, maybe_ancestor: str, code: str) -> bool:
        a, c = compact(maybe_ancestor), compact(code)
        return a != c and c.startswith(a)

    # billable / 7th character --------------------------------------------------------------------------
    def needs_seventh(self, entry: CodeEntry) -> bool:
        """A code that is complete but for its 7th character (S52.521 -> S52.521A)."""
        return self.icd.needs_seventh(entry)

    def is_header(self, entry: CodeEntry) -> bool:
        """Non-billable and not merely waiting for its 7th character: a category or subcategory."""
        return self.icd.is_header(entry)

    def targets(self, code: str) -> tuple[str, ...]:
        """Codes below a header that can end a choice: billable codes, or codes waiting for a 7th char."""
        return self._targets(code)

    def _target_codes(self, code: str) -> tuple[str, ...]:
        return tuple(self.icd.targets(code))

    # notes --------------------------------------------------------------------------------------------
    def excludes1_patterns(self, code: str) -> tuple[ExcludedRef, ...]:
        """Every Excludes1 reference applying to a code (own, ancestors, block, chapter notes)."""
        return self._excl(code)

    def _excludes1_patterns(self, code: str) -> tuple[ExcludedRef, ...]:
        entry = self.entry(code)
        if entry is None:
            return ()
        texts = [text for _, text in self.icd.applicable_notes(entry.code, "excludes1")]
        if not texts:
            texts = list(self.icd.applicable_refs(entry.code, "excludes1"))
        out: list[ExcludedRef] = []
        for text in texts:
            head = _linked_head(text)
            out.extend(ExcludedRef(p, head) for p in parse_patterns(text))
        return tuple(dict.fromkeys(out))

    def excludes(self, code: str, other: str) -> bool:
        """Whether an Excludes1 note applying to `code` covers `other`."""
        title = None
        for ref in self.excludes1_patterns(code):
            if not ref.pattern.matches(other):
                continue
            if ref.head is None:
                return True
            title = title if title is not None else title_terms(self.title(other))
            if ref.head & title.required and not ref.head & title.excluded:
                return True
        return False

    def note_groups(self, code: str, kind: str) -> tuple[NoteGroup, ...]:
        """Code-first ("code_first") or use-additional ("use_additional") instructions of a code, one group
        per instruction (a header note ending in ':' takes the item notes after it)."""
        return self._groups(code, kind)

    def _note_groups(self, code: str, kind: str) -> tuple[NoteGroup, ...]:
        entry = self.entry(code)
        if entry is None:
            return ()
        by_where: dict[str, list[str]] = {}
        for where, text in self.icd.applicable_notes(entry.code, kind):
            by_where.setdefault(where, []).append(text)
        groups: list[NoteGroup] = []
        manifestation = any(m in entry.title.lower() for m in self._mandatory_titles)
        for where, texts in by_where.items():
            current: list[str] = []
            for text in texts:
                continues = (
                    bool(current) and current[0].rstrip().endswith(":") and not _starts_instruction(text)
                )
                if current and not continues:
                    groups.append(self._group(where, current, manifestation, kind))
                    current = []
                current.append(text)
            if current:
                groups.append(self._group(where, current, manifestation, kind))
        return tuple(g for g in groups if g.patterns)

    def _group(self, where: str, texts: list[str], manifestation: bool, kind: str) -> NoteGroup:
        joined = " ".join(texts)
        lowered = joined.lower()
        optional = any(marker in lowered for marker in self._optional)
        if kind == "code_first":
            mandatory = manifestation or ("underlying" in lowered and not optional)
        else:
            mandatory = not optional and any(marker in lowered for marker in self._additional_mandatory)
        return NoteGroup(where=where, text=joined, patterns=patterns_of(texts), mandatory=mandatory)

    # pattern expansion --------------------------------------------------------------------------------
    def _all_codes(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(compact(e.code) for e in self.icd.entries() if e.billable)
        return self._sorted

    def expand(self, pattern: CodePattern, limit: int = 200) -> list[str]:
        """Billable codes a pattern covers, in code order (at most `limit`; [] when it covers more)."""
        codes = self._all_codes()
        start = bisect.bisect_left(codes, pattern.lo)
        out: list[str] = []
        upper = pattern.hi or pattern.lo
        for item in codes[start:]:
            if item[: len(upper)] > upper:
                break
            if pattern.matches(item):
                out.append(self.icd.normalize(item))
                if len(out) > limit:
                    return []
        return out


_LINK = re.compile(
    r"^(?P<head>[^()]+?)\s+(?:in|due to|with|associated with|complicating|following|secondary to)\s+[^()]*\(",
    re.IGNORECASE,
)


def _linked_head(text: str) -> frozenset[str] | None:
    """Words of the concept an Excludes1 note links to another disease ("X in Y (codes)"), else None."""
    match = _LINK.match(text)
    if match is None:
        return None
    words = content_words(match.group("head"))
    return words or None


def _starts_instruction(text: str) -> bool:
    """A note that opens a new instruction rather than listing an item of the previous one."""
    return bool(re.match(r"\s*(code|any|underlying|to identify)\b", text, re.IGNORECASE))
