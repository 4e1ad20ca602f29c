"""A small explicit-lexicon pipeline shared by the text pipeline tests (built once per session)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medcode.model.text import TermSpec, TextPipeline, build_pipeline

CASES_FILE = Path(__file__).with_name("assertion_cases.jsonl")

EXTRA_TERMS: list[Any] = [
    ("pneumonia", "condition", ["J18.9"]),
    ("concussion without loss of consciousness", "injury", ["S06.0X0"]),
    ("asthma without status asthmaticus", "condition", ["J45.909"]),
    ("pleural effusion", "condition", ["J90"]),
    ("effusion", "condition", []),
    ("chest pain", "sign_symptom", ["R07.9"]),
    ("fever", "sign_symptom", ["R50.9"]),
    ("cough", "sign_symptom", ["R05.9"]),
    ("chills", "sign_symptom", []),
    ("hypertension", "condition", ["I10"]),
    ("type 2 diabetes mellitus", "condition", ["E11.9"]),
    ("diabetes mellitus", "condition", ["E11.9"]),
    ("diabetes", "condition", ["E11.9"]),
    ("chronic kidney disease", "condition", ["N18.9"]),
    ("chronic kidney disease stage 3b", "condition", ["N18.32"]),
    ("myocardial infarction", "condition", ["I21.9"]),
    ("coronary artery disease", "condition", ["I25.10"]),
    ("breast cancer", "condition", ["C50.919"]),
    ("fracture", "injury", ["T14.8"]),
    ("fracture of femur", "injury", ["S72.90"]),
    ("appendectomy", "procedure", ["0DTJ"]),
    ("chest x-ray", "procedure", ["BW03"]),
    ("asthma", "condition", ["J45.909"]),
    ("lymphoma", "condition", []),
    ("gout", "condition", ["M10.9"]),
    ("stroke", "condition", ["I63.9"]),
    ("hemiparesis", "condition", []),
    ("atelectasis", "condition", []),
    ("crohn's disease", "condition", ["K50.90"]),
    ("haemorrhage", "sign_symptom", ["R58"]),
    ("deep vein thrombosis", "condition", ["I82.409"]),
    ("tumor", "condition", []),
]


def load_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def case_terms(cases: list[dict[str, Any]]) -> list[TermSpec]:
    seen: dict[str, TermSpec] = {}
    for case in cases:
        seen.setdefault(case["target"].lower(), TermSpec(case["target"], case["type"]))
    return list(seen.values())


@pytest.fixture(scope="session")
def cases() -> list[dict[str, Any]]:
    return load_cases()


@pytest.fixture(scope="session")
def small_pipeline(cases: list[dict[str, Any]]) -> TextPipeline:
    """The full pipeline over a small explicit lexicon: the case targets plus a few common terms."""
    return build_pipeline([*case_terms(cases), *EXTRA_TERMS])
