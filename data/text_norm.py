"""Text normalisation shared by every part of medcode that compares words: the one abbreviation table.

`fold` lower-cases, unifies typographic characters and removes accents. `abbreviations()` reads
`resources/abbreviations.tsv`, the only table of clinical abbreviations in the project; its readers are the
text pipeline's token normaliser (`medcode.model.text.normalize`), lexical retrieval
(`medcode.model.candidates.tokens`), code search (`medcode.data.search`) and the coding rules' title words
(`medcode.model.rules.terms`).

Each row says how an abbreviation may be matched (`match`):
- `any`: in any case ("ckd", "CKD");
- `upper`: in running note text only as written ("MI"); readers of short lower-case texts (code titles,
  search queries, mention phrases) also expand the lower-case form ("mi");
- `exact`: only as written: its lower-case form is a common word ("AIDS" / "aids", "PET" / "pet");
- `pattern`: a whole-token regular expression, case-insensitive ("ckd-?([1-5][ab]?)").

`title_wording` is what ICD-10 titles say where it differs from the clinical expansion ("CT" is "computed
tomography" in notes, "computerized tomography" in ICD-10-PCS titles); readers that match against code
titles use it.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

ABBREVIATIONS_FILE = "abbreviations.tsv"
MATCH_KINDS = ("any", "upper", "exact", "pattern")
_TYPOGRAPHIC = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2012": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\u00b4": "'",
        "`": "'",
        "\u00ad": "",
        "\u00a0": " ",
    }
)


def strip_accents(text: str) -> str:
    """The text without combining accents ("Sjögren" -> "Sjogren"); ASCII text is returned as is."""
    if text.isascii():
        return text
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def fold(text: str) -> str:
    """Lower case, typographic quotes and dashes unified, soft hyphens dropped, accents removed."""
    return strip_accents(text.translate(_TYPOGRAPHIC).lower())


@dataclass(frozen=True)
class Abbreviation:
    abbreviation: str
    expansion: str
    title_wording: str
    match: str

    @property
    def title_form(self) -> str:
        """The words code titles use for it (the expansion unless the titles word it otherwise)."""
        return self.title_wording or self.expansion


@dataclass(frozen=True)
class Abbreviations:
    """The abbreviation table, indexed for the three ways it is read."""

    rows: tuple[Abbreviation, ...]

    @property
    def case_sensitive(self) -> dict[str, str]:
        """Forms matched in running text only as written -> clinical expansion."""
        return {r.abbreviation: r.expansion for r in self.rows if r.match in ("upper", "exact")}

    @property
    def case_insensitive(self) -> dict[str, str]:
        """Lower-case forms matched in running text in any case -> clinical expansion."""
        return {r.abbreviation.lower(): r.expansion for r in self.rows if r.match == "any"}

    @property
    def patterns(self) -> list[tuple[re.Pattern[str], str]]:
        """Whole-token regular expressions (case-insensitive) -> expansion template."""
        return [
            (re.compile(r.abbreviation, re.IGNORECASE), r.expansion)
            for r in self.rows
            if r.match == "pattern"
        ]

    def title_words(self) -> dict[str, str]:
        """Lower-case form -> the wording of code titles, for readers of lower-case short texts."""
        return {r.abbreviation.lower(): r.title_form for r in self.rows if r.match in ("any", "upper")}


def read_abbreviations(path: Path) -> Abbreviations:
    """Read an abbreviation table (tab-separated, `#` comment lines, a header row)."""
    rows: list[Abbreviation] = []
    with path.open(encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if line.strip() and not line.startswith("#"))
        for number, record in enumerate(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), 2):
            match = (record.get("match") or "").strip()
            abbreviation = (record.get("abbreviation") or "").strip()
            expansion = (record.get("expansion") or "").strip()
            if match not in MATCH_KINDS or not abbreviation or not expansion:
                raise ValueError(
                    f"{path.name} row {number}: needs an abbreviation, an expansion and a match in {MATCH_KINDS}"
                )
            rows.append(
                Abbreviation(abbreviation, expansion, (record.get("title_wording") or "").strip(), match)
            )
    return Abbreviations(tuple(rows))


@lru_cache(maxsize=8)
def abbreviations(path: str | None = None) -> Abbreviations:
    """The project's abbreviation table (or the one at `path`), read once."""
    if path is None:
        return read_abbreviations(Path(str(resources.files("medcode.data.resources") / ABBREVIATIONS_FILE)))
    return read_abbreviations(Path(path))
