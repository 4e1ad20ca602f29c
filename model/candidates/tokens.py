"""Word normalisation for lexical retrieval: lower case, no accents, light suffix stemming.

The stemmer is deliberately small: it conflates the inflections that matter when matching notes against
code titles (diabetes / diabetic, fractures / fracture, infections / infection, renal / renally) without
a dictionary.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

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

# Abbreviations expanded to the words of the classification's titles (before synonyms and stemming).
ABBREVIATIONS: dict[str, str] = {
    "htn": "hypertension",
    "dm": "diabetes mellitus",
    "dm1": "type 1 diabetes mellitus",
    "dm2": "type 2 diabetes mellitus",
    "t1dm": "type 1 diabetes mellitus",
    "t2dm": "type 2 diabetes mellitus",
    "copd": "chronic obstructive pulmonary disease",
    "ckd": "chronic kidney disease",
    "chf": "congestive heart failure",
    "mi": "myocardial infarction",
    "ami": "acute myocardial infarction",
    "uti": "urinary tract infection",
    "cad": "coronary artery disease",
    "afib": "atrial fibrillation",
    "af": "atrial fibrillation",
    "dvt": "deep vein thrombosis",
    "pe": "pulmonary embolism",
    "gerd": "gastro esophageal reflux disease",
    "hiv": "human immunodeficiency virus",
    "tb": "tuberculosis",
    "ct": "computed tomography",
    "mri": "magnetic resonance imaging",
    "ecg": "electrocardiogram",
    "ekg": "electrocardiogram",
}

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


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


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
    """Normalised content tokens of a text (stopwords removed, synonyms mapped, stemmed)."""
    out = []
    for found in _WORD_RE.findall(strip_accents(text.lower())):
        parts = found.split("-")
        if len(parts) > 1:
            joined = "".join(parts)
            out.append(stem(WORD_SYNONYMS.get(joined, joined)))
        for raw in parts:
            out.extend(_word_tokens(raw))
    return out


def _word_tokens(raw: str) -> list[str]:
    out = []
    for word in ABBREVIATIONS.get(raw, raw).split():
        if word in STOPWORDS:
            continue
        out.append(stem(WORD_SYNONYMS.get(word, word)))
    return out
