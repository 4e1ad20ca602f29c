"""A tiny synthetic coded corpus for tests: short notes built from condition phrases with known codes,
with negated and family-history distractors that must never be coded."""

from __future__ import annotations

import json
import random
from pathlib import Path

from data.types import Document, Encounter, Gold

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
]
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
    present = rng.sample(CONDITIONS, rng.randint(2, 4))
    negated = rng.choice([c for c in CONDITIONS if c not in present])
    procedures = rng.sample(PROCEDURES, rng.randint(0, 2))
    lines = [rng.choice(OPENINGS).format(age=age, sex=sex, sex_cap=sex.capitalize())]
    for phrase, _ in present:
        lines.append(rng.choice(["The patient has {p}.", "Diagnosed with {p}.", "Known {p}."]).format(p=phrase))
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
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("dev", n_dev, 2)):
        with (folder / f"{split}.jsonl").open("w") as fh:
            for enc in make_corpus(n, seed):
                fh.write(json.dumps(enc.model_dump(mode="json")) + "\n")
    return folder
