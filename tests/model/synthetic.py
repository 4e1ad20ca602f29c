"""A tiny synthetic coded corpus for tests: short notes built from condition phrases with known codes,
with negated and family-history distractors that must never be coded."""

from __future__ import annotations

import json
import random
from pathlib import Path

from medcode.data.types import Document, Encounter, Gold

CONDITIONS: list[tuple[str, str]] = [
    ("type 2 diabetes mellitus", "E11.9"),
    ("essential hypertension", "I10"),
    ("community acquired pneumonia", "J18.9"),
    ("acute kidney failure", "N17.9"),
    ("iron deficiency anemia", "D50.9"),
    ("atrial fibrillation", "I48.91"),
    ("urinary tract infection", "N39.0"),
    ("fever", "R50.9"),
    ("abdominal pain", "R10.9"),
    ("major depressive disorder", "F32.9"),
    ("hypothyroidism", "E03.9"),
    ("asthma", "J45.909"),
    ("migraine", "G43.909"),
    ("obstructive sleep apnea", "G47.33"),
    ("hyperlipidemia", "E78.5"),
    ("obesity", "E66.9"),
    ("gastro-esophageal reflux disease", "K21.9"),
    ("acute appendicitis", "K35.80"),
    ("psoriasis vulgaris", "L40.0"),
    ("dehydration", "E86.0"),
    ("hyponatremia", "E87.1"),
    ("chronic obstructive pulmonary disease with acute exacerbation", "J44.1"),
    ("type 2 diabetes mellitus with diabetic chronic kidney disease", "E11.22"),
    ("acute on chronic systolic heart failure", "I50.23"),
    ("benign prostatic hyperplasia", "N40.0"),
    ("constipation", "K59.00"),
    ("sepsis", "A41.9"),
    ("cerebral infarction", "I63.9"),
    ("unspecified dementia", "F03.90"),
    ("headache", "R51.9"),
]
"""Phrase and code; earlier entries are drawn more often (a skewed code distribution, like real data)."""
PROCEDURES: list[tuple[str, str]] = [
    ("a chest x-ray was performed", "BW03ZZZ"),
    ("an abdominal CT scan was performed", "BW20"),
    ("an electrocardiogram was recorded", "4A02X4Z"),
]
OPENINGS = [
    "A {age}-year-old {sex} presented to the emergency department.",
    "We report the case of a {age}-year-old {sex}.",
    "{sex_cap} aged {age} admitted for evaluation.",
]


def make_encounter(i: int, rng: random.Random) -> Encounter:
    age = rng.randint(20, 90)
    sex = rng.choice(["man", "woman"])
    weights = [1.0 / (1 + k // 4) for k in range(len(CONDITIONS))]
    present: list[tuple[str, str]] = []
    wanted = rng.randint(2, 4)
    while len(present) < wanted:
        pick = rng.choices(CONDITIONS, weights=weights)[0]
        if pick not in present:
            present.append(pick)
    negated = rng.choice([c for c in CONDITIONS if c not in present])
    procedures = rng.sample(PROCEDURES, rng.randint(0, 2))
    lines = [rng.choice(OPENINGS).format(age=age, sex=sex, sex_cap=sex.capitalize())]
    for phrase, _ in present:
        lines.append(
            rng.choice(["The patient has {p}.", "Diagnosed with {p}.", "Known {p}."]).format(p=phrase)
        )
    lines.append(f"No {negated[0]}.")
    for phrase, _ in procedures:
        lines.append(phrase.capitalize() + ".")
    rng.shuffle(lines[1:])
    return Encounter(
        encounter_id=f"syn-{i}",
        documents=[Document(document_id="d1", text="\n".join(lines))],
        gold=Gold(diagnosis=[c for _, c in present], procedure=[c for _, c in procedures]),
    )


def make_corpus(n: int, seed: int = 0) -> list[Encounter]:
    rng = random.Random(seed)
    return [make_encounter(i, rng) for i in range(n)]


def write_jsonl_corpus(folder: Path, n_train: int = 40, n_dev: int = 16) -> Path:
    """A `--dataset jsonl` folder: train.jsonl and dev.jsonl, ids prefixed by split so that none is shared."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("dev", n_dev, 2)):
        with (folder / f"{split}.jsonl").open("w") as fh:
            for enc in make_corpus(n, seed):
                enc = enc.model_copy(update={"encounter_id": f"{split}-{enc.encounter_id}"})
                fh.write(json.dumps(enc.model_dump(mode="json")) + "\n")
    return folder
