"""Metric functions against hand-computed values and scikit-learn."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.preprocessing import MultiLabelBinarizer

from medcode.evaluation import metrics

# --- hand-computed ----------------------------------------------------------------------------------------


def test_average_precision_is_trec_style_by_hand() -> None:
    # hits at ranks 1 and 3: (1/1 + 2/3) / 2
    assert metrics.average_precision(["A", "B", "C", "D"], {"A", "C"}) == pytest.approx((1 + 2 / 3) / 2)


def test_average_precision_counts_unranked_gold_as_misses() -> None:
    # one hit at rank 2 out of two gold codes: (1/2) / 2
    assert metrics.average_precision(["X", "A"], {"A", "B"}) == pytest.approx(0.25)


def test_average_precision_ignores_repeated_codes_in_ranking() -> None:
    assert metrics.average_precision(["A", "A", "B"], {"B"}) == pytest.approx(0.5)


def test_average_precision_without_gold_is_nan() -> None:
    assert math.isnan(metrics.average_precision(["A"], set()))


def test_map_averages_over_documents_with_gold_only() -> None:
    rankings = [["A", "B"], ["C"], []]
    golds: list[set[str]] = [{"B"}, set(), {"D"}]
    # doc 1: 1/2; doc 2 not averaged; doc 3 has gold but no ranking: 0
    assert metrics.mean_average_precision(rankings, golds) == pytest.approx(0.25)


def test_map_drops_invalid_codes_from_ranking_and_gold() -> None:
    valid = {"A", "B"}.__contains__
    # without the filter: hit at rank 2, gold has 2 codes -> 0.25; with it the ranking closes up and the
    # invalid gold code is ignored -> 1.0
    assert metrics.mean_average_precision([["BAD", "A"]], [{"A", "WORSE"}]) == pytest.approx(0.25)
    assert metrics.mean_average_precision([["BAD", "A"]], [{"A", "WORSE"}], valid) == pytest.approx(1.0)


def test_map_document_left_without_valid_gold_is_not_averaged() -> None:
    valid = {"A"}.__contains__
    assert metrics.mean_average_precision([["A"], ["A"]], [{"A"}, {"BAD"}], valid) == pytest.approx(1.0)


def test_precision_and_recall_at_k_by_hand() -> None:
    ranking = ["A", "X", "B", "Y", "Z", "C"]
    gold = {"A", "B", "C", "D"}
    assert metrics.precision_at_k(ranking, gold, 5) == pytest.approx(2 / 5)
    assert metrics.recall_at_k(ranking, gold, 5) == pytest.approx(2 / 4)
    # a short ranking still divides by k
    assert metrics.precision_at_k(["A"], gold, 8) == pytest.approx(1 / 8)
    assert metrics.recall_at_k(ranking, gold, 15) == pytest.approx(3 / 4)
    # a repeated code counts once, in the place of its first occurrence
    assert metrics.precision_at_k(["A", "A", "B"], gold, 2) == pytest.approx(2 / 2)


def test_at_k_needs_a_positive_k_and_recall_without_gold_is_nan() -> None:
    assert math.isnan(metrics.recall_at_k(["A"], set(), 1))
    for at_k in (metrics.precision_at_k, metrics.recall_at_k):
        with pytest.raises(ValueError, match="k must be positive"):
            at_k(["A"], set(), 0)


def test_mean_precision_at_k_skips_documents_without_gold() -> None:
    assert metrics.mean_precision_at_k([["A"], ["B"]], [{"A"}, set()], 1) == pytest.approx(1.0)


def test_micro_prf_by_hand() -> None:
    prf = metrics.micro_prf([{"A", "B"}, {"C"}], [{"A"}, {"C", "D"}])
    assert (prf.tp, prf.fp, prf.fn) == (2, 1, 1)
    assert prf.precision == pytest.approx(2 / 3)
    assert prf.recall == pytest.approx(2 / 3)
    assert prf.f1 == pytest.approx(2 / 3)


def test_macro_prf_by_hand() -> None:
    # codes: A (tp 1) -> P1 R1 F1; B (fp 1) -> 0 0 0; C (tp 1, fn 0) -> 1 1 1; D (fn 1) -> 0 0 0
    prf = metrics.macro_prf([{"A", "B"}, {"C"}], [{"A"}, {"C", "D"}])
    assert prf.precision == pytest.approx(0.5)
    assert prf.recall == pytest.approx(0.5)
    assert prf.f1 == pytest.approx(0.5)


def test_exact_match_counts_empty_sets_as_match() -> None:
    assert metrics.exact_match([{"A"}, set(), {"B"}], [{"A"}, set(), {"C"}]) == pytest.approx(2 / 3)


def test_candidate_recall_pools_gold_codes() -> None:
    rankings = [["A", "B", "C"], ["D"]]
    golds = [{"C", "Z"}, {"D"}]
    assert metrics.candidate_recall(rankings, golds, k=2) == pytest.approx(1 / 3)
    assert metrics.candidate_recall(rankings, golds, k=50) == pytest.approx(2 / 3)


def test_automation_at_precision_by_hand() -> None:
    # confidences/labels pooled: 0.99 T, 0.95 T, 0.9 F, 0.8 T; 5 gold codes in all
    suggested = [[("A", 0.99), ("B", 0.9)], [("C", 0.95), ("D", 0.8)]]
    golds = [{"A", "X"}, {"C", "D", "Y"}]
    result = metrics.automation_at_precision(suggested, golds, 0.95)
    # cut-off 0.99: 1/1; 0.95: 2/2; 0.9: 2/3; 0.8: 3/4 -> lowest with precision >= 0.95 is 0.95
    assert result.threshold == pytest.approx(0.95)
    assert result.recall == pytest.approx(2 / 5)
    # encounter 1 has 0.9 below the cut-off, encounter 2 has 0.8: none whole
    assert result.encounters_auto_accepted == 0.0
    lenient = metrics.automation_at_precision(suggested, golds, 0.7)
    assert lenient.threshold == pytest.approx(0.8)
    assert lenient.recall == pytest.approx(3 / 5)
    assert lenient.encounters_auto_accepted == pytest.approx(1.0)


def test_automation_is_zero_when_precision_never_reaches_target() -> None:
    result = metrics.automation_at_precision([[("A", 0.9)]], [{"B"}], 0.95)
    assert result.threshold is None
    assert result.recall == 0.0
    assert result.encounters_auto_accepted == 0.0


def test_automation_takes_lowest_qualifying_cutoff_even_after_a_dip() -> None:
    # precision by cut-off: 0.9 -> 0/1, 0.8 -> 1/2... build one where a lower cut-off qualifies again
    suggested = [[("A", 0.9), ("B", 0.8), ("C", 0.7), ("D", 0.6)]]
    golds = [{"A", "C", "D"}]
    # 0.9: 1/1, 0.8: 1/2, 0.7: 2/3, 0.6: 3/4
    assert metrics.automation_at_precision(suggested, golds, 0.75).threshold == pytest.approx(0.6)


# --- against scikit-learn ----------------------------------------------------------------------------------

CODES = [f"C{i}" for i in range(12)]


def _random_sets(rng: random.Random, n: int) -> list[set[str]]:
    return [set(rng.sample(CODES, rng.randint(0, 5))) for _ in range(n)]


@pytest.mark.parametrize("seed", range(8))
def test_average_precision_matches_sklearn_when_all_gold_are_ranked(seed: int) -> None:
    rng = random.Random(seed)
    codes = CODES[:]
    rng.shuffle(codes)
    gold = set(rng.sample(codes, rng.randint(1, 6)))
    scores = np.linspace(1.0, 0.1, len(codes))
    y = [int(c in gold) for c in codes]
    assert metrics.average_precision(codes, gold) == pytest.approx(average_precision_score(y, scores))


@pytest.mark.parametrize("seed", range(8))
def test_micro_and_macro_prf_match_sklearn(seed: int) -> None:
    rng = random.Random(seed)
    predicted, golds = _random_sets(rng, 20), _random_sets(rng, 20)
    labels = sorted({c for s in predicted + golds for c in s})
    mlb = MultiLabelBinarizer(classes=labels)
    y_true, y_pred = mlb.fit_transform(golds), mlb.transform(predicted)
    for average, ours in (("micro", metrics.micro_prf), ("macro", metrics.macro_prf)):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, average=average, labels=list(range(len(labels))), zero_division=0
        )
        got = ours(predicted, golds)
        assert (got.precision, got.recall, got.f1) == pytest.approx((p, r, f))
    assert metrics.exact_match(predicted, golds) == pytest.approx(accuracy_score(y_true, y_pred))


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_matches_sklearn_with_ties_and_weights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    y[0], y[1] = 0, 1
    scores = rng.integers(0, 8, 60) / 8  # many ties
    weights = rng.integers(1, 5, 60).astype(float)
    assert metrics.roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores))
    assert metrics.roc_auc(y, scores, weights) == pytest.approx(
        roc_auc_score(y, scores, sample_weight=weights)
    )


def test_roc_auc_is_nan_with_one_class() -> None:
    assert math.isnan(metrics.roc_auc([1, 1], [0.2, 0.4]))


def _scored_case(seed: int) -> tuple[list[list[tuple[str, float]]], list[set[str]]]:
    rng = random.Random(seed)
    scored = []
    for _ in range(15):
        ranked = rng.sample(CODES, rng.randint(0, 8))
        scored.append([(c, round(rng.random(), 2)) for c in ranked])
    golds = _random_sets(rng, 15)
    return scored, golds


def _dense(
    scored: list[list[tuple[str, float]]], golds: list[set[str]]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    labels = sorted({c for r in scored for c, _ in r} | {c for g in golds for c in g})
    y = np.array([[int(c in g) for c in labels] for g in golds])
    s = np.full(y.shape, metrics.UNRANKED_SCORE)
    for i, ranking in enumerate(scored):
        for c, score in ranking:
            s[i, labels.index(c)] = score
    return y, s, labels


@pytest.mark.parametrize("seed", range(6))
def test_micro_auc_matches_sklearn(seed: int) -> None:
    scored, golds = _scored_case(seed)
    y, s, _ = _dense(scored, golds)
    assert metrics.micro_auc(scored, golds) == pytest.approx(roc_auc_score(y, s, average="micro"))


@pytest.mark.parametrize("seed", range(6))
def test_macro_auc_matches_sklearn_over_codes_with_both_classes(seed: int) -> None:
    scored, golds = _scored_case(seed)
    y, s, _ = _dense(scored, golds)
    both = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < y.shape[0]]
    expected = roc_auc_score(y[:, both], s[:, both], average="macro")
    assert metrics.macro_auc(scored, golds) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(4))
def test_threshold_curve_matches_sklearn_precision_recall_curve(seed: int) -> None:
    scored, _ = _scored_case(seed)
    # gold only among ranked codes, so that sklearn's recall denominator is the same
    rng = random.Random(seed + 100)
    golds = [{c for c, _ in r if rng.random() < 0.4} for r in scored]
    y = [int(c in g) for r, g in zip(scored, golds, strict=True) for c, _ in r]
    s = [score for r in scored for _, score in r]
    if sum(y) == 0:
        pytest.skip("no positive in this draw")
    precision, recall, thresholds = precision_recall_curve(y, s)
    sk = {
        round(float(t), 6): (float(p), float(r))
        for p, r, t in zip(precision, recall, thresholds, strict=False)
    }
    ours = metrics.threshold_curve(scored, golds)
    assert ours, "curve must not be empty"
    matched = 0
    for point in ours:
        key = round(point.threshold, 6)
        if key in sk:
            matched += 1
            assert (point.precision, point.recall) == pytest.approx(sk[key])
    assert matched >= len(ours) - 1
    assert ours[-1].recall == pytest.approx(1.0)
