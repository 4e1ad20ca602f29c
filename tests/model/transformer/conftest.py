"""A tiny synthetic coded corpus and one truncated-encoder model trained on it (shared by the tests)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from medcode.data.codesystems import CodeSets
from medcode.data.types import Document, Encounter, Gold, Mention

CODES: dict[str, list[str]] = {
    "E11.9": [
        "The patient has type 2 diabetes mellitus treated with metformin.",
        "Known type 2 diabetic on oral hypoglycemic agents, glucose well controlled.",
    ],
    "I10": [
        "Essential hypertension is treated with enalapril.",
        "Longstanding high blood pressure, on amlodipine for hypertension.",
    ],
    "J45.909": [
        "She has asthma and uses a salbutamol inhaler for wheezing.",
        "Bronchial asthma with episodic wheeze, treated with inhaled steroids.",
    ],
    "N39.0": [
        "Urine culture confirmed a urinary tract infection treated with antibiotics.",
        "Dysuria and pyuria due to urinary tract infection.",
    ],
    "M54.50": [
        "He complains of low back pain after lifting boxes.",
        "Chronic lumbago with lower back pain, no radiation to the legs.",
    ],
}
FILLER = [
    "The patient was seen in the clinic today.",
    "Vital signs were stable on arrival.",
    "Follow up was arranged in two weeks.",
    "The family was informed of the plan.",
]
UNSEEN_CODE = "K35.80"
RETRIEVAL_CODES = [*CODES, UNSEEN_CODE, "K80.20", "S72.001A", "L03.116", "H10.9", "R51.9", "G43.909"]


def make_note(codes: list[str], rng: random.Random, i: int) -> Encounter:
    sentences = [rng.choice(FILLER)]
    for code in codes:
        sentences.append(rng.choice(CODES[code]))
    sentences.append(rng.choice(FILLER))
    return Encounter(
        encounter_id=f"syn{i}",
        documents=[Document(document_id="d1", text="\n".join(sentences))],
        gold=Gold(diagnosis=codes),
    )


def synthetic_corpus(n: int = 20, seed: int = 0) -> list[Encounter]:
    rng = random.Random(seed)
    names = list(CODES)
    out = []
    for i in range(n):
        codes = [names[i % len(names)]]
        if i % 3 == 0:
            codes.append(names[(i + 2) % len(names)])
        out.append(make_note(codes, rng, i))
    return out


def tiny_config(**overrides: Any) -> Any:
    from medcode.model.transformer.config import TransformerConfig

    return TransformerConfig.tiny(retrieval_codes=RETRIEVAL_CODES, num_threads=2, **overrides)


@pytest.fixture(scope="session")
def trained_coder() -> Any:
    """One model trained on the synthetic corpus (about 20 s on 2 CPU cores)."""
    from medcode.training.transformer_train import train_transformer

    corpus = synthetic_corpus()
    return train_transformer(
        corpus[:18],
        corpus[18:],
        tiny_config(),
        device="cpu",
        code_sets=CodeSets(),
        mention_extractor=no_mentions,
    )


def no_mentions(encounter: Encounter) -> list[Mention]:
    return []


def note(text: str, encounter_id: str = "t1") -> Encounter:
    return Encounter(encounter_id=encounter_id, documents=[Document(document_id="d1", text=text)])
