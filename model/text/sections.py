"""Section detection: headers ("PMH:", "HISTORY OF PRESENT ILLNESS", "A/P:", "FHx -") from a data file.

A header is recognised at the start of a line, followed by ':' or ' - ' or alone on its line, or after a
sentence end when followed by ':' and capitalised. Its section runs until the next header. Header tokens are
marked so that later steps never read them as mentions or context triggers (a header must neither break nor
leak modifiers: "HISTORY OF PRESENT ILLNESS:" is not "history of").
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import lru_cache

from spacy.language import Language
from spacy.tokens import Doc

from medcode.model.text.extensions import doc_text, register_extensions
from medcode.model.text.rules import load_json_resource

SECTIONIZER_FACTORY = "medcode_sectionizer_v1"
UNKNOWN_SECTION = "unknown"
_BULLET = r"(?:[-*\u2022#>]+[ \t]*|\(?\d{1,2}[.)][ \t]+|[A-Za-z][.)][ \t]+)?"


@dataclass(frozen=True)
class Section:
    """One section of a note: its header's character span and where its body ends."""

    name: str
    header_start: int
    header_end: int
    end: int
    assertion: dict[str, bool] = field(default_factory=dict)

    @property
    def body_start(self) -> int:
        return self.header_end


@dataclass(frozen=True)
class SectionRules:
    """Header spelling -> section name, and the assertion flags each section implies."""

    header_to_section: dict[str, str]
    section_assertions: dict[str, dict[str, bool]]
    version: str

    @classmethod
    @lru_cache(maxsize=8)
    def load(cls, name: str = "sections.json") -> SectionRules:
        data = load_json_resource(name)
        headers: dict[str, str] = {}
        assertions: dict[str, dict[str, bool]] = {}
        for section in data["sections"]:
            for header in section["headers"]:
                headers.setdefault(_header_key(header), section["name"])
            if section.get("assertion"):
                assertions[section["name"]] = dict(section["assertion"])
        return cls(headers, assertions, str(data.get("version", "")))


def _header_key(text: str) -> str:
    return " ".join(text.lower().split())


@lru_cache(maxsize=8)
def _header_regex(headers: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    alternatives = sorted(headers, key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(word) for word in header.split()) for header in alternatives)
    line_start = re.compile(
        rf"^[ \t]*{_BULLET}(?P<h>{body})[ \t]*(?P<sep>:|[ \t]-[ \t]|(?=\r?\n)|\Z)",
        re.IGNORECASE | re.MULTILINE,
    )
    mid_line = re.compile(rf"(?<=[.;!?])[ \t]+(?P<h>{body})[ \t]*(?P<sep>:)", re.IGNORECASE)
    return line_start, mid_line


_CONTINUATION = re.compile(r"[ \t]+\S|[-*\u2022>][ \t]|\(?\d{1,2}[.)][ \t]|[a-z]")


def _inline_body_end(text: str, header_end: int, limit: int) -> int:
    """Where a section ends when its body starts on the header's line ("FHx: mother with DM").

    Such a section covers its line and the lines that continue it (indented, bulleted, numbered or
    starting in lower case); a section whose header stands alone on its line runs to the next header.
    """
    line_end = text.find("\n", header_end, limit)
    if line_end == -1 or not text[header_end:line_end].strip():
        return limit
    position = line_end
    while position < limit:
        next_end = text.find("\n", position + 1, limit)
        line = text[position + 1 : next_end if next_end != -1 else limit]
        if not line.strip() or not _CONTINUATION.match(line):
            return position + 1
        if next_end == -1:
            return limit
        position = next_end
    return limit


class Sectionizer:
    """Pipeline step: find section headers, assign a section to every token, mark header tokens."""

    def __init__(self, rules: SectionRules) -> None:
        register_extensions()
        self.rules = rules
        self._line_start, self._mid_line = _header_regex(tuple(rules.header_to_section))

    def find_sections(self, text: str) -> list[Section]:
        """Sections of a text, in order (text before the first header belongs to no section)."""
        headers: dict[int, tuple[int, str]] = {}
        for pattern, mid in ((self._line_start, False), (self._mid_line, True)):
            for match in pattern.finditer(text):
                header = match.group("h")
                if not self._plausible(header, mid):
                    continue
                name = self.rules.header_to_section[_header_key(header)]
                end = match.end("sep") if match.group("sep") else match.end("h")
                headers.setdefault(match.start("h"), (end, name))
        kept: list[tuple[int, int, str]] = []
        for start in sorted(headers):
            header_end, name = headers[start]
            if kept and start < kept[-1][1]:
                continue
            kept.append((start, header_end, name))
        sections: list[Section] = []
        for index, (start, header_end, name) in enumerate(kept):
            end = kept[index + 1][0] if index + 1 < len(kept) else len(text)
            end = _inline_body_end(text, header_end, end)
            assertion = dict(self.rules.section_assertions.get(name, {}))
            sections.append(Section(name, start, header_end, end, assertion))
        return sections

    @staticmethod
    def _plausible(header: str, mid_line: bool) -> bool:
        letters = [ch for ch in header if ch.isalpha()]
        if not letters:
            return False
        return not ((mid_line or len(letters) <= 3) and not header[0].isupper())

    def __call__(self, doc: Doc) -> Doc:
        sections = self.find_sections(doc_text(doc))
        starts = [s.header_start for s in sections]
        token_sections: list[str] = []
        header_tokens: list[bool] = []
        for token in doc:
            index = bisect.bisect_right(starts, token.idx) - 1
            if index < 0:
                token_sections.append(UNKNOWN_SECTION)
                header_tokens.append(False)
                continue
            section = sections[index]
            if token.idx >= section.end:
                token_sections.append(UNKNOWN_SECTION)
                header_tokens.append(False)
                continue
            token_sections.append(section.name)
            header_tokens.append(token.idx < section.header_end and not token.is_space)
        doc._.sections = sections
        doc._.token_sections = token_sections
        doc._.header_tokens = header_tokens
        return doc


@Language.factory(SECTIONIZER_FACTORY, default_config={"rules": "sections.json"})
def make_sectionizer(nlp: Language, name: str, rules: str) -> Sectionizer:
    return Sectionizer(SectionRules.load(rules))
