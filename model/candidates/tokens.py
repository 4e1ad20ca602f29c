"""Word normalisation for lexical retrieval: lower case, no accents, light suffix stemming.

The stemmer is deliberately small: it conflates the inflections that matter when matching notes against
code titles (diabetes / diabetic, fractures / fracture, infections / infection, renal / renally) without
a dictionary.
"""

from __future__ import annotations

import re
from functools import lru_cache

from medcode.data.text_norm import abbreviations, strip_accents

_WORD_RE = re.compile(r"[a-z0-9]+(?:-[a-z]+)*")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "than",
        "the",
        "to",
        "was",
        "were",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "has",
        "have",
        "had",
        "due",
        "not",
        "specified",
        "unspecified",
        "nos",
        "nec",
    ]
)

# Synonyms and abbreviations mapped to the words the classification uses (applied before stemming).
WORD_SYNONYMS: dict[str, str] = {
    "kidney": "renal",
    "kidneys": "renal",
    "tumour": "tumor",
    "tumours": "tumor",
    "oedema": "edema",
    "anaemia": "anemia",
    "haemorrhage": "hemorrhage",
    "hemorrhagic": "hemorrhage",
    "bleeding": "hemorrhage",
    "oesophagus": "esophagus",
    "oesophageal": "esophagus",
    "esophageal": "esophagus",
    "faeces": "feces",
    "paediatric": "pediatric",
    "leukaemia": "leukemia",
    "haematoma": "hematoma",
    "haematuria": "hematuria",
    "ischaemia": "ischemia",
    "ischaemic": "ischemic",
    "hypertensive": "hypertension",
    "lung": "pulmonary",
    "lungs": "pulmonary",
    "heart": "cardiac",
    "liver": "hepatic",
    "cancer": "malignant",
    "carcinoma": "malignant",
    "malignancy": "malignant",
    "metastasis": "secondary",
    "metastases": "secondary",
    "metastatic": "secondary",
}


@lru_cache(maxsize=1)
def _abbreviations() -> dict[str, str]:
    """Abbreviations expanded to the words of the classification's titles (before synonyms and stemming),
    from the project's one abbreviation table (medcode.data.text_norm)."""
    return abbreviations().title_words()


_SUFFIXES = (
    "ically",
    "ations",
    "ation",
    "ities",
    "ity",
    "ical",
    "ies",
    "ic",
    "es",
    "s",
    "al",
    "ly",
)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Strip one common suffix when at least four characters remain ("diabetic" -> "diabet")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> list[str]:
    """Normalised content tokens of a text (abbreviations expanded, stopwords removed, synonyms mapped,
    stemmed)."""
    out: list[str] = []
    for found in _WORD_RE.findall(strip_accents(text.lower())):
        _add_word(found, out, expand=True)
    return out


def _add_word(found: str, out: list[str], expand: bool) -> None:
    """One word of the text; a hyphenated word counts joined and as its parts ("x-ray": "xray", "x", "ray")."""
    expansion = _abbreviations().get(found) if expand else None
    if expansion is not None:
        for word in _WORD_RE.findall(expansion):
            _add_word(word, out, expand=False)
        return
    parts = found.split("-")
    if len(parts) > 1:
        joined = "".join(parts)
        out.append(stem(WORD_SYNONYMS.get(joined, joined)))
        for raw in parts:
            _add_word(raw, out, expand)
    elif found not in STOPWORDS:
        out.append(stem(WORD_SYNONYMS.get(found, found)))
