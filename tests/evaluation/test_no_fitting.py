"""The evaluation reads a model's outputs only: it never fits thresholds or calibration on the reported split."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from medcode.data.types import Document, Encounter, Gold, Result
from medcode.evaluation.evaluate import evaluate_coder
from tests.evaluation.conftest import RULES
from tests.evaluation.fakes import keyword_coder

EVALUATION = Path(__file__).resolve().parents[2] / "evaluation"


class ReadOnlyCoder:
    """Offers only the Coder protocol; touching anything else (thresholds, calibrator, fit...) fails."""

    def __init__(self) -> None:
        self._inner = keyword_coder(RULES)

    @property
    def version(self) -> str:
        return "ro-1"

    @property
    def code_set_version(self) -> str:
        return "ICD-10-CM 2026"

    @property
    def training_data(self) -> dict[str, object]:
        return {}  # provenance metadata may be read, nothing else

    def suggest(self, encounter: Encounter) -> Result:
        return self._inner.suggest(encounter)

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the evaluation touched the model's {name!r}")


def _encounters() -> list[Encounter]:
    return [
        Encounter(encounter_id="a", documents=[Document(document_id="d1", text="diabetes")],
                  gold=Gold(diagnosis=["E11.9"])),
        Encounter(encounter_id="b", documents=[Document(document_id="d1", text="pneumonia")],
                  gold=Gold(diagnosis=["J18.9"])),
    ]  # fmt: skip


def test_evaluation_only_calls_suggest_and_keeps_the_model_threshold() -> None:
    coder = ReadOnlyCoder()
    report, _ = evaluate_coder(
        coder,
        _encounters(),
        dataset="t",
        split="dev",
        model_ref="ro",
        safety=False,
        rules=False,
        progress=False,
    )  # type: ignore[arg-type]
    diagnosis = report["tasks"]["diagnosis"]
    # J18.9 scores 0.3, below the model's threshold 0.5: a fitted threshold would have taken it; we must not
    assert diagnosis["micro_recall"] == pytest.approx(0.5)
    assert diagnosis["micro_precision"] == pytest.approx(1.0)
    # and the confidences are scored as given, not recalibrated: pairs (0.9, 1) and (0.3, 1) -> ECE 0.4
    assert diagnosis["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.7)


FORBIDDEN_CALLS = {"fit", "fit_transform", "partial_fit", "tune_thresholds", "fit_calibration"}
FORBIDDEN_NAMES = {"IsotonicRegression", "LogisticRegression", "CalibratedClassifierCV"}


def test_no_evaluation_module_fits_anything() -> None:
    offenders = []
    for path in sorted(EVALUATION.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in FORBIDDEN_CALLS
            ):
                offenders.append(f"{path.name}:{node.lineno} .{node.func.attr}()")
            if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
                offenders.append(f"{path.name}:{node.lineno} {node.id}")
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (
                    node.module.startswith(
                        ("medcode.model.calibration", "medcode.model.thresholds", "sklearn.calibration")
                    )
                )
            ):
                offenders.append(f"{path.name}:{node.lineno} import from {node.module}")
    assert not offenders, offenders


def test_reporting_the_training_split_warns() -> None:
    coder = keyword_coder(RULES)
    coder.training_data = {"dataset": "codiesp", "calibration_data": "20% of train held out"}  # type: ignore[attr-defined]
    report, _ = evaluate_coder(
        coder, _encounters(), dataset="codiesp", split="train", model_ref="f", safety=False, rules=False,
        progress=False,
    )  # fmt: skip
    assert report["model_training_data"]["calibration_data"] == "20% of train held out"
    assert report["warnings"] and "not held-out" in report["warnings"][0]
    report, _ = evaluate_coder(
        coder, _encounters(), dataset="codiesp", split="dev", model_ref="f", safety=False, rules=False,
        progress=False,
    )  # fmt: skip
    assert report["warnings"] == []
