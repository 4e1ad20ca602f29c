"""Results broken down by code frequency in training and by ICD-10-CM chapter (or ICD-10-PCS section).

Pure functions over predicted and gold code sets; the frequency table comes from the caller (the train
split of the same dataset).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from medcode.evaluation.metrics import prf_for_codes

FREQUENT_MIN = 10
"""Codes seen in at least this many training documents are 'frequent'; 1 to FREQUENT_MIN - 1 'few_shot'."""

BUCKETS = ("frequent", "few_shot", "unseen")

# ICD-10-CM FY2026 chapters by the range of their three-character categories.
ICD10CM_CHAPTERS: tuple[tuple[str, str, str, str], ...] = (
    ("1", "A00", "B99", "Certain infectious and parasitic diseases"),
    ("2", "C00", "D49", "Neoplasms"),
    ("3", "D50", "D89", "Diseases of the blood and immune mechanism"),
    ("4", "E00", "E89", "Endocrine, nutritional and metabolic diseases"),
    ("5", "F01", "F99", "Mental, behavioral and neurodevelopmental disorders"),
    ("6", "G00", "G99", "Diseases of the nervous system"),
    ("7", "H00", "H59", "Diseases of the eye and adnexa"),
    ("8", "H60", "H95", "Diseases of the ear and mastoid process"),
    ("9", "I00", "I99", "Diseases of the circulatory system"),
    ("10", "J00", "J99", "Diseases of the respiratory system"),
    ("11", "K00", "K95", "Diseases of the digestive system"),
    ("12", "L00", "L99", "Diseases of the skin and subcutaneous tissue"),
    ("13", "M00", "M99", "Diseases of the musculoskeletal system and connective tissue"),
    ("14", "N00", "N99", "Diseases of the genitourinary system"),
    ("15", "O00", "O9A", "Pregnancy, childbirth and the puerperium"),
    ("16", "P00", "P96", "Certain conditions originating in the perinatal period"),
    ("17", "Q00", "Q99", "Congenital malformations and chromosomal abnormalities"),
    ("18", "R00", "R99", "Symptoms, signs and abnormal findings"),
    ("19", "S00", "T88", "Injury, poisoning and other consequences of external causes"),
    ("20", "V00", "Y99", "External causes of morbidity"),
    ("21", "Z00", "Z99", "Factors influencing health status and contact with health services"),
    ("22", "U00", "U85", "Codes for special purposes"),
)

# ICD-10-PCS sections by the first character.
PCS_SECTIONS: Mapping[str, str] = {
    "0": "Medical and Surgical",
    "1": "Obstetrics",
    "2": "Placement",
    "3": "Administration",
    "4": "Measurement and Monitoring",
    "5": "Extracorporeal or Systemic Assistance and Performance",
    "6": "Extracorporeal or Systemic Therapies",
    "7": "Osteopathic",
    "8": "Other Procedures",
    "9": "Chiropractic",
    "B": "Imaging",
    "C": "Nuclear Medicine",
    "D": "Radiation Therapy",
    "F": "Physical Rehabilitation and Diagnostic Audiology",
    "G": "Mental Health",
    "H": "Substance Abuse Treatment",
    "X": "New Technology",
}

OTHER = "other"


def icd10cm_chapter(code: str) -> str:
    """The ICD-10-CM chapter number ("1".."22") of a code, or "other" for anything outside the ranges."""
    category = code.strip().upper().replace(".", "")[:3]
    if len(category) < 3 or not (category[0].isalpha() and category[1].isdigit()):
        return OTHER
    for number, low, high, _ in ICD10CM_CHAPTERS:
        if low <= category <= high:
            return number
    return OTHER


def chapter_title(chapter: str) -> str:
    for number, _, _, title in ICD10CM_CHAPTERS:
        if number == chapter:
            return title
    return "Outside the ICD-10-CM chapters"


def pcs_section(code: str) -> str:
    """The ICD-10-PCS section letter of a 7-character (or partial) PCS code, or "other"."""
    first = code.strip().upper()[:1]
    return first if first in PCS_SECTIONS and code[:1].isalnum() else OTHER


def group_of(task: str, code: str) -> str:
    return icd10cm_chapter(code) if task == "diagnosis" else pcs_section(code)


def group_title(task: str, group: str) -> str:
    if task == "diagnosis":
        return chapter_title(group)
    return PCS_SECTIONS.get(group, "Outside the ICD-10-PCS sections")


def document_frequencies(golds: Iterable[Collection[str]]) -> Counter[str]:
    """In how many documents each code is gold (the training frequency of a code)."""
    counts: Counter[str] = Counter()
    for gold in golds:
        counts.update(set(gold))
    return counts


def frequency_bucket(code: str, frequencies: Mapping[str, int]) -> str:
    n = frequencies.get(code, 0)
    if n >= FREQUENT_MIN:
        return "frequent"
    return "few_shot" if n >= 1 else "unseen"


def by_frequency(
    predicted: Sequence[Collection[str]],
    golds: Sequence[Collection[str]],
    frequencies: Mapping[str, int],
    rankings: Sequence[Sequence[str]] | None = None,
    k: int = 50,
) -> dict[str, dict[str, float | int | None]]:
    """Per bucket: distinct gold codes, gold instances, predictions, micro P/R/F1 and candidate recall@k."""
    out: dict[str, dict[str, float | int | None]] = {}
    for bucket in BUCKETS:

        def keep(code: str, bucket: str = bucket) -> bool:
            return frequency_bucket(code, frequencies) == bucket

        out[bucket] = _group_scores(predicted, golds, keep, rankings, k)
    return out


def by_group(
    task: str,
    predicted: Sequence[Collection[str]],
    golds: Sequence[Collection[str]],
    rankings: Sequence[Sequence[str]] | None = None,
    k: int = 50,
) -> dict[str, dict[str, float | int | str | None]]:
    """Per ICD-10-CM chapter (diagnosis) or PCS section (procedure) present in gold or predictions."""
    groups = sorted(
        {group_of(task, c) for codes in [*predicted, *golds] for c in codes},
        key=lambda g: (not g.isdigit(), int(g) if g.isdigit() else 0, g),
    )
    out: dict[str, dict[str, float | int | str | None]] = {}
    for group in groups:

        def keep(code: str, group: str = group) -> bool:
            return group_of(task, code) == group

        row: dict[str, float | int | str | None] = {"title": group_title(task, group)}
        row.update(_group_scores(predicted, golds, keep, rankings, k))
        out[group] = row
    return out


def _group_scores(
    predicted: Sequence[Collection[str]],
    golds: Sequence[Collection[str]],
    keep: Callable[[str], bool],
    rankings: Sequence[Sequence[str]] | None,
    k: int,
) -> dict[str, float | int | None]:
    gold_codes = {c for g in golds for c in g if keep(c)}
    n_gold = sum(1 for g in golds for c in set(g) if keep(c))
    n_predicted = sum(1 for p in predicted for c in set(p) if keep(c))
    prf = prf_for_codes(predicted, golds, keep)
    row: dict[str, float | int | None] = {
        "n_codes": len(gold_codes),
        "n_gold": n_gold,
        "n_predicted": n_predicted,
        "precision": prf.precision if n_predicted else None,
        "recall": prf.recall if n_gold else None,
        "f1": prf.f1 if n_gold or n_predicted else None,
    }
    if rankings is not None:
        found = 0
        for ranking, gold in zip(rankings, golds, strict=True):
            top = set(list(dict.fromkeys(ranking))[:k])
            found += sum(1 for c in set(gold) if keep(c) and c in top)
        row[f"candidate_recall_at_{k}"] = found / n_gold if n_gold else None
    return row
