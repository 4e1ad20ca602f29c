"""ICD-10-CM FY2026 from the official tabular XML that ships inside the `simple-icd-10-cm` package.

The XML is parsed once (xml.etree) into `CodeEntry` records; where the caller names a cache folder, the
result is pickled under `cache_dir/icd10cm`, keyed by the XML file's size and mtime and by `FORMAT_VERSION`, so later
loads only unpickle. 7th-character definitions are inherited down the tree and expanded into full billable
codes with the placeholder X (S03.0 + A -> S03.0XXA); a leaf that takes a 7th character is then not
billable itself.

Code references in notes ("(E10.-)", "N18.1-N18.6", "I12.0") are parsed into patterns: a single code
means that code and everything below it ("E10", "E11.2", "I12.0"); a range "E08-E13" keeps its dash and
covers every code whose prefix falls between its ends. `ref_covers(ref, code)` answers whether a pattern
covers a code.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import pickle
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import BinaryIO, NamedTuple

from medcode.data.cache import read_cache, write_cache
from medcode.data.code_table import CodeTable

logger = logging.getLogger(__name__)

NAME = "ICD-10-CM"
FISCAL_YEAR = 2026
VERSION = f"{NAME} {FISCAL_YEAR}"
FORMAT_VERSION = 2
"""Bump when the pickled layout or the parsing changes: old cache files are then ignored."""

NOTE_KINDS = ("excludes1", "excludes2", "code_first", "use_additional", "code_also")
_XML_TAG_OF_KIND = {
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "code_first": "codeFirst",
    "use_additional": "useAdditionalCode",
    "code_also": "codeAlso",
}

_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_REF_RE = re.compile(rf"(?<![A-Za-z0-9])({_CODE})(?:-({_CODE})(?![0-9A-Za-z])|(\.?-))?(?![0-9A-Za-z])")
# The one 7th-character exception the tabular states only in prose (S06 note): codes of category S06 whose
# 6th character is 7 or 8 (death before regaining consciousness) take only 7th character A.
_SEVENTH_EXCEPTIONS: dict[str, tuple[str, str]] = {"S06": ("78", "A")}
_NO_SEVENTH: Mapping[str, str] = {}
_FORMAT_RE = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")


class CodeEntry(NamedTuple):
    """One ICD-10-CM code: a category, subcategory, code, or a 7th-character expansion.

    A NamedTuple (immutable) rather than a dataclass: ~98k of them unpickle several times faster."""

    code: str
    title: str
    parent: str | None
    chapter: str
    """Chapter number as printed in the tabular ("4")."""
    block: str
    """Section id, e.g. "E08-E13"."""
    billable: bool
    depth: int
    """1 for a 3-character category, +1 per level; 7th-character expansions are one below their base."""
    inclusion_terms: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes1: tuple[str, ...] = ()
    excludes2: tuple[str, ...] = ()
    code_first: tuple[str, ...] = ()
    use_additional: tuple[str, ...] = ()
    code_also: tuple[str, ...] = ()
    excludes1_refs: tuple[str, ...] = ()
    excludes2_refs: tuple[str, ...] = ()
    code_first_refs: tuple[str, ...] = ()
    use_additional_refs: tuple[str, ...] = ()
    code_also_refs: tuple[str, ...] = ()
    seventh_chars: Mapping[str, str] = _NO_SEVENTH
    """7th character -> meaning applying at this code (inherited from the nearest ancestor); {} if none."""
    seventh_char_note: str = ""
    seventh_char: str | None = None
    """The 7th character this entry adds to its parent, for expanded codes only."""
    notes: tuple[str, ...] = ()

    @property
    def category(self) -> str:
        return self.code[:3]

    def notes_of(self, kind: str) -> tuple[str, ...]:
        """Note texts of one kind ("excludes1", "code_first", ...) written at this code."""
        return tuple(getattr(self, kind))

    def refs_of(self, kind: str) -> tuple[str, ...]:
        """Code patterns referenced by this code's notes of one kind."""
        return tuple(getattr(self, f"{kind}_refs"))


@dataclass(frozen=True, slots=True)
class Grouping:
    """A chapter or a block (section) with the notes written at its level; these apply to its codes."""

    id: str
    title: str
    chapter: str
    notes_by_kind: Mapping[str, tuple[str, ...]]
    refs_by_kind: Mapping[str, tuple[str, ...]]


def normalize_code(code: str) -> str:
    """ICD-10-CM form: upper case, no spaces, a dot after the category ("e1122" -> "E11.22")."""
    compact = re.sub(r"[\s.]", "", code).upper()
    return compact if len(compact) <= 3 else f"{compact[:3]}.{compact[3:]}"


def looks_like_icd10cm(code: str) -> bool:
    """True when the text has the shape of an ICD-10-CM code (whether or not it exists)."""
    return bool(_FORMAT_RE.match(re.sub(r"[\s.]", "", code).upper()))


def parse_refs(text: str) -> list[str]:
    """Code patterns in a note: "(E10.-)" -> "E10", "N18.1-N18.6" -> "N18.1-N18.6", "I12.0" -> "I12.0"."""
    refs: list[str] = []
    for match in _REF_RE.finditer(text):
        first, last = match.group(1), match.group(2)
        ref = f"{first}-{last}" if last else first
        if ref not in refs:
            refs.append(ref)
    return refs


def ref_covers(ref: str, code: str) -> bool:
    """Whether a note's code pattern covers `code` (both in dotted form; a trailing "-" is allowed)."""
    target = code.replace(".", "")
    ref = ref.strip()
    if "-" in ref.rstrip("-"):
        first, last = (part.replace(".", "") for part in ref.split("-", 1))
        return first <= target[: len(first)] and target[: len(last)] <= last
    prefix = ref.rstrip("-").rstrip(".").replace(".", "")
    return target.startswith(prefix)


# ---------------------------------------------------------------------------------------------- parsing


@lru_cache(maxsize=1)
def tabular_path() -> Path:
    """The tabular XML inside the installed simple-icd-10-cm package.

    Found without importing the package: importing it parses the whole XML through its own slow API."""
    spec = importlib.util.find_spec("simple_icd_10_cm")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError("the simple-icd-10-cm package is not installed")
    folder = Path(locations[0]) / "data"
    candidates = sorted(p for p in folder.glob("*.xml") if "tabular" in p.name)
    if not candidates:
        raise FileNotFoundError(f"no tabular XML found in {folder}")
    return candidates[-1]


def _texts(node: ET.Element, tag: str) -> tuple[str, ...]:
    return tuple(
        " ".join((note.text or "").split()) for child in node.findall(tag) for note in child.findall("note")
    )


def _note_fields(node: ET.Element) -> dict[str, tuple[str, ...]]:
    return {kind: _texts(node, tag) for kind, tag in _XML_TAG_OF_KIND.items()}


def _refs(texts: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for text in texts:
        for ref in parse_refs(text):
            if ref not in out:
                out.append(ref)
    return tuple(out)


def _seventh(node: ET.Element) -> dict[str, str] | None:
    definition = node.find("sevenChrDef")
    if definition is None:
        return None
    return {
        ext.get("char", ""): " ".join((ext.text or "").split())
        for ext in definition.findall("extension")
        if ext.get("char")
    }


def _seventh_applies(code: str, char: str) -> bool:
    exception = _SEVENTH_EXCEPTIONS.get(code[:3])
    compact = code.replace(".", "").ljust(6, "X")
    return exception is None or compact[5] not in exception[0] or char in exception[1]


def _with_seventh(code: str, char: str) -> str:
    compact = code.replace(".", "").ljust(6, "X")
    return normalize_code(compact + char)


@dataclass
class _Walk:
    entries: list[CodeEntry] = field(default_factory=list)
    groupings: dict[str, Grouping] = field(default_factory=dict)
    shared: dict[tuple[tuple[str, str], ...], dict[str, str]] = field(default_factory=dict)

    def share(self, chars: dict[str, str]) -> dict[str, str]:
        """One dict object per distinct definition, so the pickle stores it once."""
        return self.shared.setdefault(tuple(sorted(chars.items())), chars)


def _walk_diag(
    node: ET.Element,
    walk: _Walk,
    *,
    parent: str | None,
    chapter: str,
    block: str,
    depth: int,
    seventh: dict[str, str],
    seventh_note: str,
) -> None:
    code = (node.findtext("name") or "").strip()
    title = " ".join((node.findtext("desc") or "").split())
    own = _seventh(node)
    if own is not None:
        seventh = walk.share(own)
        seventh_note = " ".join(_texts(node, "sevenChrNote"))
    children = node.findall("diag")
    expands = not children and bool(seventh) and len(code.replace(".", "")) <= 6
    kind_notes = _note_fields(node)
    walk.entries.append(
        CodeEntry(
            code=code,
            title=title,
            parent=parent,
            chapter=chapter,
            block=block,
            billable=not children and not expands,
            depth=depth,
            inclusion_terms=_texts(node, "inclusionTerm"),
            includes=_texts(node, "includes"),
            notes=_texts(node, "notes"),
            seventh_chars=seventh,
            seventh_char_note=seventh_note,
            excludes1=kind_notes["excludes1"],
            excludes2=kind_notes["excludes2"],
            code_first=kind_notes["code_first"],
            use_additional=kind_notes["use_additional"],
            code_also=kind_notes["code_also"],
            excludes1_refs=_refs(kind_notes["excludes1"]),
            excludes2_refs=_refs(kind_notes["excludes2"]),
            code_first_refs=_refs(kind_notes["code_first"]),
            use_additional_refs=_refs(kind_notes["use_additional"]),
            code_also_refs=_refs(kind_notes["code_also"]),
        )
    )
    for child in children:
        _walk_diag(
            child,
            walk,
            parent=code,
            chapter=chapter,
            block=block,
            depth=depth + 1,
            seventh=seventh,
            seventh_note=seventh_note,
        )
    if expands:
        for char, meaning in seventh.items():
            if not _seventh_applies(code, char):
                continue
            walk.entries.append(
                CodeEntry(
                    code=_with_seventh(code, char),
                    title=f"{title}, {meaning}",
                    parent=code,
                    chapter=chapter,
                    block=block,
                    billable=True,
                    depth=depth + 1,
                    seventh_chars=seventh,
                    seventh_char_note=seventh_note,
                    seventh_char=char,
                )
            )


def _grouping(node: ET.Element, gid: str, title: str, chapter: str) -> Grouping:
    notes = _note_fields(node)
    return Grouping(
        id=gid,
        title=title,
        chapter=chapter,
        notes_by_kind=notes,
        refs_by_kind={kind: _refs(texts) for kind, texts in notes.items()},
    )


def parse_tabular(path: Path) -> tuple[str, list[CodeEntry], dict[str, Grouping]]:
    """Parse a tabular XML file: (version text, entries in tabular order, chapters and blocks by id)."""
    root = ET.parse(path).getroot()
    walk = _Walk()
    for chapter_node in root.findall("chapter"):
        chapter = (chapter_node.findtext("name") or "").strip()
        chapter_title = " ".join((chapter_node.findtext("desc") or "").split())
        walk.groupings[chapter] = _grouping(chapter_node, chapter, chapter_title, chapter)
        for section in chapter_node.findall("section"):
            block = section.get("id", "")
            block_title = " ".join((section.findtext("desc") or "").split())
            walk.groupings[block] = _grouping(section, block, block_title, chapter)
            for diag in section.findall("diag"):
                _walk_diag(
                    diag,
                    walk,
                    parent=None,
                    chapter=chapter,
                    block=block,
                    depth=1,
                    seventh={},
                    seventh_note="",
                )
    version = (root.findtext("version") or str(FISCAL_YEAR)).strip()
    return version, walk.entries, walk.groupings


# ---------------------------------------------------------------------------------------------- the code set


class ICD10CM(CodeTable[CodeEntry]):
    """The ICD-10-CM code set: lookup, hierarchy, notes and code-reference helpers."""

    name = NAME

    def __init__(self, entries: list[CodeEntry], groupings: dict[str, Grouping], fiscal_year: int) -> None:
        self.fiscal_year = fiscal_year
        self.version = f"{NAME} {fiscal_year}"
        self._codes: dict[str, CodeEntry] = {e.code: e for e in entries}
        self._groupings = groupings
        children: dict[str, list[str]] = {}
        for entry in entries:
            if entry.parent is not None:
                children.setdefault(entry.parent, []).append(entry.code)
        self._children = children

    # lookup ---------------------------------------------------------------------------------------------
    normalize = staticmethod(normalize_code)

    def get(self, code: str) -> CodeEntry | None:
        entry = self._codes.get(code)  # most callers pass the stored form: no normalising
        return entry if entry is not None else self._codes.get(normalize_code(code))

    def entries(self) -> Iterator[CodeEntry]:
        """Every entry in tabular order (categories before their children)."""
        return iter(self._codes.values())

    def billable_codes(self) -> list[str]:
        return [e.code for e in self._codes.values() if e.billable]

    # hierarchy ------------------------------------------------------------------------------------------
    def parents(self, code: str) -> list[str]:
        """Ancestor codes, nearest first: parents("E11.22") == ["E11.2", "E11"]."""
        chain: list[str] = []
        parent = self[code].parent
        while parent is not None:
            chain.append(parent)
            parent = self._codes[parent].parent
        return chain

    def children(self, code: str) -> list[str]:
        """Direct children codes (7th-character expansions count as children of their base code)."""
        return list(self._children.get(self[code].code, ()))

    def descendants(self, code: str) -> list[str]:
        out: list[str] = []
        stack = list(reversed(self.children(code)))
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(reversed(self._children.get(current, ())))
        return out

    def category(self, code: str) -> str:
        """The 3-character category a code belongs to ("E11.22" -> "E11")."""
        return self[code].category

    # 7th characters and placeholder X ------------------------------------------------------------------
    def resolve(self, code: str) -> CodeEntry | None:
        """The entry of a code, or of the code a placeholder X pads when the 7th character is still missing
        ("S01.20X" -> S01.20); None when the release does not know it."""
        entry = self.get(code)
        if entry is not None:
            return entry
        trimmed = re.sub(r"[\s.]", "", code).upper()
        while trimmed.endswith("X") and len(trimmed) > 3:
            trimmed = trimmed[:-1]
            entry = self.get(trimmed)
            if entry is not None:
                return entry
        return None

    def needs_seventh(self, entry: CodeEntry) -> bool:
        """A code that is complete but for its 7th character (S52.521 -> S52.521A)."""
        if not entry.seventh_chars or entry.seventh_char is not None or entry.billable:
            return False
        children = self._children.get(entry.code, ())
        return bool(children) and all(self._codes[c].seventh_char is not None for c in children)

    def is_header(self, entry: CodeEntry) -> bool:
        """Non-billable and not merely waiting for its 7th character: a category or subcategory."""
        return not entry.billable and not self.needs_seventh(entry)

    def seventh_meaning(self, entry: CodeEntry) -> str:
        """What a 7th-character expansion's last character means ("initial encounter ..."); "" otherwise."""
        if len(entry.code.replace(".", "")) != 7 or not entry.seventh_chars:
            return ""
        return entry.seventh_chars.get(entry.seventh_char or entry.code[-1], "")

    def targets(self, code: str) -> list[str]:
        """Codes below a header that can end a choice: billable codes, or codes waiting for a 7th char."""
        entry = self.resolve(code)
        if entry is None:
            return []
        out: list[str] = []
        stack = list(reversed(self._children.get(entry.code, ())))
        while stack:
            current = stack.pop()
            child = self._codes[current]
            if child.billable or self.needs_seventh(child):
                out.append(child.code)
                continue
            stack.extend(reversed(self._children.get(current, ())))
        return out

    def chapter(self, number: str) -> Grouping:
        return self._groupings[number]

    def block(self, block_id: str) -> Grouping:
        return self._groupings[block_id]

    @property
    def groupings(self) -> Mapping[str, Grouping]:
        """Chapters (by number) and blocks (by section id) with their notes."""
        return self._groupings

    # notes ----------------------------------------------------------------------------------------------
    def applicable_notes(self, code: str, kind: str) -> list[tuple[str, str]]:
        """(where, text) for every note of `kind` that applies to `code`: its own, its ancestors', its
        block's and chapter's (e.g. applicable_notes("E11.22", "use_additional"))."""
        if kind not in NOTE_KINDS:
            raise ValueError(f"unknown note kind {kind!r}; expected one of {', '.join(NOTE_KINDS)}")
        entry = self[code]
        out = [(c, text) for c in [entry.code, *self.parents(entry.code)] for text in self[c].notes_of(kind)]
        for gid in (entry.block, entry.chapter):
            out.extend((gid, text) for text in self._groupings[gid].notes_by_kind.get(kind, ()))
        return out

    def applicable_refs(self, code: str, kind: str) -> list[str]:
        """Code patterns of every note of `kind` applying to `code` (own, ancestors, block, chapter)."""
        entry = self[code]
        refs: list[str] = []
        for c in [entry.code, *self.parents(entry.code)]:
            refs.extend(self[c].refs_of(kind))
        for gid in (entry.block, entry.chapter):
            refs.extend(self._groupings[gid].refs_by_kind.get(kind, ()))
        return list(dict.fromkeys(refs))

    def expand_ref(self, ref: str, billable_only: bool = False) -> list[str]:
        """Codes a note pattern covers ("E10" -> E10 and its descendants; "E08-E13" -> all of E08..E13)."""
        return [
            e.code
            for e in self._codes.values()
            if ref_covers(ref, e.code) and (e.billable or not billable_only)
        ]


# ---------------------------------------------------------------------------------------------- cache


def _cache_file(path: Path, cache_dir: Path) -> Path:
    stat = path.stat()
    key = f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}-v{FORMAT_VERSION}"
    return cache_dir / "icd10cm" / f"{key}.pkl"


def _read_cache(cache: Path) -> tuple[list[CodeEntry], dict[str, Grouping], int] | None:
    def read(handle: BinaryIO) -> tuple[list[CodeEntry], dict[str, Grouping], int]:
        payload = pickle.load(handle)
        return payload["entries"], payload["groupings"], payload["fiscal_year"]

    return read_cache(cache, read, "ICD-10-CM cache")


def _write_cache(cache: Path, entries: list[CodeEntry], groupings: dict[str, Grouping], year: int) -> None:
    payload = {"entries": entries, "groupings": groupings, "fiscal_year": year}
    if not write_cache(
        cache, partial(pickle.dump, payload, protocol=pickle.HIGHEST_PROTOCOL), "ICD-10-CM cache"
    ):
        return
    stem = cache.name.rsplit("-", 3)[0]
    for stale in cache.parent.glob(f"{stem}-*.pkl"):
        if stale != cache:  # an older release or format of the same file
            with contextlib.suppress(OSError):
                stale.unlink(missing_ok=True)


def load_icd10cm_from(path: Path, cache_dir: Path | None = None) -> ICD10CM:
    """Load a tabular XML file (the packaged one or another release), through `cache_dir` when given."""
    started = time.perf_counter()
    cache = _cache_file(path, cache_dir) if cache_dir is not None else None
    cached = _read_cache(cache) if cache is not None else None
    if cached is not None:
        entries, groupings, year = cached
        source = "cache"
    else:
        version, entries, groupings = parse_tabular(path)
        year = int(version) if version.isdigit() else FISCAL_YEAR
        if cache is not None:
            _write_cache(cache, entries, groupings, year)
        source = "xml"
    code_set = ICD10CM(entries, groupings, year)
    logger.info(
        "loaded %s: %d entries from %s in %.2f s",
        code_set.version,
        len(code_set),
        source,
        time.perf_counter() - started,
    )
    return code_set


_LOADED: dict[Path, ICD10CM] = {}


def load_icd10cm(cache_dir: Path | None = None) -> ICD10CM:
    """The packaged ICD-10-CM 2026 code set, parsed once per process.

    The edges (the CLI, the app factory) pass the settings' cache folder on their first call so that later
    processes only unpickle; library code calls it without arguments and shares the same object.
    """
    path = tabular_path()
    if path not in _LOADED:
        _LOADED[path] = load_icd10cm_from(path, cache_dir)
    return _LOADED[path]
