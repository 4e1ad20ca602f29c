"""A tiny JSONL corpus (train + dev) and a fake model wired in place of the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode.evaluation import checks, runner
from tests.evaluation.fakes import FakeCoder, Rule, fake_extract, keyword_coder

RULES = (
    Rule("diabetes", "E11.9", 0.9),
    Rule("hypertension", "I10", 0.7),
    Rule("pneumonia", "J18.9", 0.3),
    Rule("fracture", "S52.501A", 0.96),
    Rule("appendectomy", "0DTJ4ZZ", 0.8, system="ICD-10-PCS"),
)
WEAK_RULES = (
    Rule("diabetes", "E11.9", 0.4),
    Rule("hypertension", "I10", 0.7),
    Rule("pneumonia", "J18.9", 0.6),
)

DEV = [
    {
        "encounter_id": "e1",
        "documents": [{"document_id": "d1", "text": "Type 2 diabetes and hypertension."}],
        "gold": {"diagnosis": ["E11.9", "I10"], "procedure": []},
    },
    {
        "encounter_id": "e2",
        "documents": [{"document_id": "d1", "text": "No pneumonia. Appendectomy performed."}],
        "gold": {"diagnosis": ["R10.9"], "procedure": ["0DTJ4ZZ"]},
    },
    {
        "encounter_id": "e3",
        "documents": [{"document_id": "d1", "text": "Fracture of radius. Mother had diabetes."}],
        "gold": {"diagnosis": ["S52.501A"], "procedure": []},
    },
]
TRAIN = [
    {
        "encounter_id": f"t{i}",
        "documents": [{"document_id": "d1", "text": "Diabetes."}],
        "gold": {"diagnosis": ["E11.9"] + (["I10"] if i < 2 else []), "procedure": []},
    }
    for i in range(10)
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, rows in (("dev", DEV), ("train", TRAIN)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeCoder]:
    """`load_coder(ref)` answers fakes: "fake" (good), "weak"; anything else is unknown."""
    models = {"fake": keyword_coder(RULES, "fake-1"), "weak": keyword_coder(WEAK_RULES, "weak-1")}

    def load(ref: str | None = None) -> FakeCoder:
        from medcode.data.errors import ModelNotFoundError

        if ref not in models:
            raise ModelNotFoundError(f"unknown model reference {ref!r}")
        return models[ref]

    monkeypatch.setattr(runner, "load_coder", load)
    monkeypatch.setattr(checks, "default_extractor", lambda: fake_extract)
    return models
