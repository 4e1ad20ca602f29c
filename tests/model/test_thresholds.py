from __future__ import annotations

import numpy as np

from medcode.model.thresholds import (
    TaskThresholds,
    best_f1_threshold,
    precision_threshold,
    tune_task_thresholds,
)


def test_best_f1_threshold_separates_perfectly_separable_scores() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2])
    labels = np.array([1, 1, 1, 0, 0], dtype=bool)
    threshold, f1 = best_f1_threshold(scores, labels)
    assert 0.3 < threshold <= 0.7
    assert f1 == 1.0


def test_best_f1_counts_positives_that_were_never_scored() -> None:
    scores = np.array([0.9, 0.1])
    labels = np.array([1, 0], dtype=bool)
    _, f1 = best_f1_threshold(scores, labels, n_positive=3)
    assert abs(f1 - 2 * 1 / (1 + 3)) < 1e-9  # P = 1, R = 1/3


def test_precision_threshold_reaches_target_precision() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(2000)
    labels = rng.random(2000) < scores  # P(correct) = score
    t = precision_threshold(scores, labels, target=0.95)
    assert 0.8 < t < 1.0
    assert labels[scores >= t].mean() >= 0.95


def test_per_code_overrides_only_for_frequent_codes() -> None:
    rng = np.random.default_rng(1)
    codes = ["A"] * 300 + ["B"] * 10
    scores = rng.random(310)
    labels = rng.random(310) < scores
    th = tune_task_thresholds(codes, scores, labels, min_code_support=25)
    assert set(th.per_code) == {"A"}
    assert th.decision_for("B") == th.decision
    assert th.auto_accept >= th.decision


def test_thresholds_round_trip_through_json() -> None:
    th = TaskThresholds(decision=0.41, per_code={"I10": 0.33}, auto_accept=0.93)
    assert TaskThresholds.from_json(th.to_json()) == th
