"""Decision and auto-accept thresholds: what they are (stored in the pack) and how they are tuned.

Tuning happens on held-out predictions only (a split of train or out-of-fold scores), never on the split
that is reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class TaskThresholds:
    """Thresholds of one task (diagnosis or procedure) on the calibrated confidence."""

    decision: float = 0.5
    """A code is suggested when its confidence reaches this (or its per-code override)."""
    per_code: dict[str, float] = field(default_factory=dict)
    auto_accept: float = 0.95
    """Confidence above which a suggested code needs no human look (fitted to a target precision)."""
    target_precision: float = 0.95

    def decision_for(self, code: str) -> float:
        return self.per_code.get(code, self.decision)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskThresholds:
        return cls(
            decision=float(data.get("decision", 0.5)),
            per_code={str(k): float(v) for k, v in dict(data.get("per_code", {})).items()},
            auto_accept=float(data.get("auto_accept", 0.95)),
            target_precision=float(data.get("target_precision", 0.95)),
        )


def best_f1_threshold(
    scores: np.ndarray, labels: np.ndarray, n_positive: int | None = None
) -> tuple[float, float]:
    """The threshold on `scores` that maximises F1 of `labels`; returns (threshold, f1).

    `n_positive` is the number of true items overall, including those never scored (missed candidates);
    it defaults to the positives among `labels`.
    """
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    total = int(labels.sum()) if n_positive is None else int(n_positive)
    if scores.size == 0 or total == 0:
        return 0.5, 0.0
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    k = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (k + total)
    # only cut between distinct score values
    last_of_value = np.r_[s[1:] != s[:-1], True]
    f1 = np.where(last_of_value, f1, -1.0)
    i = int(np.argmax(f1))
    threshold = float(s[i]) if i + 1 >= len(s) else float((s[i] + s[i + 1]) / 2)
    return threshold, float(f1[i])


def precision_threshold(
    scores: np.ndarray, labels: np.ndarray, target: float, min_support: int = 20
) -> float:
    """The lowest threshold whose items above it reach `target` precision (1.0 + eps when none does)."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    if scores.size == 0:
        return 1.0 + 1e-9
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    k = np.arange(1, len(s) + 1)
    precision = np.cumsum(y) / k
    last_of_value = np.r_[s[1:] != s[:-1], True]
    ok = (precision >= target) & last_of_value & (k >= min_support)
    if not ok.any():
        return 1.0 + 1e-9
    i = int(np.nonzero(ok)[0].max())
    return float(s[i])


def tune_task_thresholds(
    codes: Sequence[str],
    scores: np.ndarray,
    labels: np.ndarray,
    n_positive: int | None = None,
    min_code_support: int = 25,
    shrink: float = 0.5,
    target_precision: float = 0.95,
) -> TaskThresholds:
    """A global F1-optimal threshold, per-code overrides for frequent codes, and the auto-accept threshold.

    Per-code thresholds are the code's own F1-optimal threshold pulled halfway (`shrink`) toward the global
    one, and kept only when the code has at least `min_code_support` positives in the held-out data.
    """
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    decision, _ = best_f1_threshold(scores, labels, n_positive)
    by_code: dict[str, list[int]] = defaultdict(list)
    for i, code in enumerate(codes):
        by_code[code].append(i)
    per_code: dict[str, float] = {}
    for code, idx in by_code.items():
        y = labels[idx]
        if int(y.sum()) < min_code_support:
            continue
        own, _ = best_f1_threshold(scores[idx], y)
        per_code[code] = round(float(shrink * own + (1 - shrink) * decision), 6)
    auto = precision_threshold(scores, labels, target_precision)
    return TaskThresholds(
        decision=round(decision, 6),
        per_code=per_code,
        auto_accept=max(float(auto), decision),
        target_precision=target_precision,
    )
