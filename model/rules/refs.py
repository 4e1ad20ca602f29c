"""Code patterns as the ICD-10-CM tabular writes them in its notes, matched hierarchically.

A note such as "diabetes mellitus (E08-E13 with .42)" or "type 1 diabetes mellitus (E10.-)" names codes by
pattern: a code stands for itself and everything below it ("E10", "E11.2-"), "A-B" is a range compared on
the code's prefix ("E08-E13", "N18.1-N18.6"), and a trailing qualifier narrows the range ("with .42",
"with fifth character 1", "with 7th character B", "with final characters -23"). `parse_patterns` reads
them from note text; `CodePattern.matches` answers whether a pattern covers a code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?"
_PART = re.compile(
    rf"^\s*(?P<lo>{_CODE})(?:\.?-)?(?:\s*-\s*(?P<hi>{_CODE})(?:\.?-)?)?\s*(?:with\s+(?P<qual>.+?))?\s*$"
)
_LOOSE = re.compile(rf"(?<![A-Za-z0-9])(?P<lo>{_CODE})(?:\.?-)?(?:-(?P<hi>{_CODE})(?:\.?-)?)?(?![0-9A-Za-z])")
_PAREN = re.compile(r"\(([^()]*)\)")
_WORD_QUALIFIER = re.compile(r"\bwith\s+(?!\.|(?:fifth|sixth|seventh|final|[0-9]))[a-z]{3,}", re.IGNORECASE)
_ORDINALS = {
    "first": 0,
    "1st": 0,
    "second": 1,
    "2nd": 1,
    "third": 2,
    "3rd": 2,
    "fourth": 3,
    "4th": 3,
    "fifth": 4,
    "5th": 4,
    "sixth": 5,
    "6th": 5,
    "seventh": 6,
    "7th": 6,
}


@lru_cache(maxsize=1 << 16)
def compact(code: str) -> str:
    """Code without dot or spaces, upper case ("e11.22" -> "E1122")."""
    return re.sub(r"[\s.]", "", code).upper()


@dataclass(frozen=True)
class CodePattern:
    """One code pattern: a prefix or a prefix range, optionally narrowed by a qualifier."""

    text: str
    lo: str
    hi: str | None = None
    after_category: tuple[str, str] | None = None
    """'with .42' -> ("42", "42"): the characters after the category must start within this range."""
    positions: tuple[tuple[int, ...], str] | None = None
    """'with fifth or sixth character 5' -> ((4, 5), "5"): a character at one of these places is allowed."""
    suffix: str | None = None
    """'with final characters -23' -> "23"."""

    def matches(self, code: str) -> bool:
        target = compact(code)
        if self.hi is None:
            if not target.startswith(self.lo):
                return False
        elif not (self.lo <= target[: len(self.lo)] and target[: len(self.hi)] <= self.hi):
            return False
        if self.after_category is not None:
            low, high = self.after_category
            tail = target[3:]
            if not (low <= tail[: len(low)] and tail[: len(high)] <= high):
                return False
        if self.positions is not None:
            places, allowed = self.positions
            if not any(len(target) > p and target[p] in allowed for p in places):
                return False
        return self.suffix is None or target.endswith(self.suffix)


def _qualifier(text: str) -> dict[str, object] | None:
    """Parse the words after 'with' in a pattern; None when they are not a code qualifier."""
    q = text.strip().lower().rstrip(".,;")
    m = re.fullmatch(r"\.([0-9a-z]{1,3})-?(?:\s*-\s*\.([0-9a-z]{1,3})-?)?", q)
    if m:
        low = m.group(1).upper()
        high = (m.group(2) or m.group(1)).upper()
        return {"after_category": (low, high)}
    m = re.fullmatch(r"final characters?\s*-?\s*([0-9a-z]{1,3})", q)
    if m:
        return {"suffix": m.group(1).upper()}
    m = re.fullmatch(
        r"((?:[a-z0-9]+)(?:\s+or\s+[a-z0-9]+)*)\s+characters?\s+([0-9a-z])(?:\s*-\s*([0-9a-z]))?", q
    )
    if m:
        places = tuple(_ORDINALS[w] for w in re.split(r"\s+or\s+", m.group(1)) if w in _ORDINALS)
        if not places:
            return None
        first, last = m.group(2).upper(), (m.group(3) or m.group(2)).upper()
        allowed = "".join(chr(c) for c in range(ord(first), ord(last) + 1))
        return {"positions": (places, allowed)}
    return None


def _pattern(text: str, lo: str, hi: str | None, qual: str | None) -> CodePattern | None:
    lo_c = compact(lo)
    hi_c = compact(hi) if hi else None
    extra: dict[str, object] = {}
    if qual:
        parsed = _qualifier(qual)
        if parsed is None:
            return None  # "with ketoacidosis": a condition we cannot read as codes; no pattern
        extra = parsed
    return CodePattern(text=text.strip(), lo=lo_c, hi=hi_c, **extra)  # type: ignore[arg-type]


@lru_cache(maxsize=65536)
def parse_patterns(text: str) -> tuple[CodePattern, ...]:
    """Every code pattern in one note text (or one bare reference such as "E11.2-" or "E08-E13")."""
    out: list[CodePattern] = []
    groups = _PAREN.findall(text)
    if not groups:
        first = _LOOSE.search(text)
        if first is not None and _WORD_QUALIFIER.search(text[first.end() :]):
            return ()  # "see categories E08-E10, E11, E13 with ketoacidosis": qualified by words
        groups = [text]
    read = False
    for group in groups:
        for part in group.split(","):
            m = _PART.match(part)
            if m:
                read = True
                p = _pattern(part, m.group("lo"), m.group("hi"), m.group("qual"))
                if p is not None:
                    out.append(p)
    if not read:
        for m in _LOOSE.finditer(text):
            p = _pattern(m.group(0), m.group("lo"), m.group("hi"), None)
            if p is not None:
                out.append(p)
    return tuple(dict.fromkeys(out))


def patterns_of(texts: Iterable[str]) -> tuple[CodePattern, ...]:
    """The patterns of several note texts, de-duplicated in order."""
    out: list[CodePattern] = []
    for text in texts:
        out.extend(parse_patterns(text))
    return tuple(dict.fromkeys(out))


def any_match(patterns: Iterable[CodePattern], code: str) -> bool:
    return any(p.matches(code) for p in patterns)
