"""Bootstrap intervals: one model, and two models paired on the same documents."""

from __future__ import annotations

import numpy as np
import pytest

from medcode.evaluation import bootstrap, metrics


def test_identical_models_differ_by_exactly_zero() -> None:
    ap = np.array([0.2, 0.5, np.nan, 0.9, 0.4])
    diff = bootstrap.paired_bootstrap(ap, ap, n_resamples=200, seed=1)
    assert diff.delta == 0.0
    assert (diff.low, diff.high) == (0.0, 0.0)
    assert diff.p_value == 1.0


def test_consistently_better_model_has_interval_above_zero() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(100) * 0.5
    b = a + 0.1 + rng.random(100) * 0.02
    diff = bootstrap.paired_bootstrap(a, b, n_resamples=500, seed=3)
    assert diff.delta == pytest.approx(float(np.mean(b - a)))
    assert diff.low > 0.05 and diff.high < 0.15
    assert diff.p_value < 0.01


def test_pairing_removes_document_difficulty_from_the_interval() -> None:
    # documents vary a lot, the gap between models is constant: the paired interval is tight
    rng = np.random.default_rng(5)
    a = rng.random(80)
    b = a + 0.01
    diff = bootstrap.paired_bootstrap(a, b, n_resamples=300, seed=0)
    assert diff.high - diff.low < 1e-9
    assert diff.delta == pytest.approx(0.01)


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.random(50), rng.random(50)
    first = bootstrap.paired_bootstrap(a, b, n_resamples=300, seed=7)
    again = bootstrap.paired_bootstrap(a, b, n_resamples=300, seed=7)
    other = bootstrap.paired_bootstrap(a, b, n_resamples=300, seed=8)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)


def test_one_model_interval_contains_the_map() -> None:
    rng = np.random.default_rng(4)
    ap = rng.random(120)
    interval = bootstrap.bootstrap_ci(ap, n_resamples=400, seed=0)
    assert interval.value == pytest.approx(float(ap.mean()))
    assert interval.low < interval.value < interval.high
    assert interval.high - interval.low < 0.2


def test_micro_f1_statistic_equals_micro_prf() -> None:
    predicted = [{"A", "B"}, {"C"}, set()]
    golds = [{"A"}, {"C", "D"}, {"E"}]
    rows = np.array(
        [(len(p & g), len(p - g), len(g - p)) for p, g in zip(predicted, golds, strict=True)], float
    )
    prf = metrics.micro_prf(predicted, golds)
    assert bootstrap.micro_f1_statistic(rows) == pytest.approx(prf.f1)
    assert bootstrap.micro_precision_statistic(rows) == pytest.approx(prf.precision)
    assert bootstrap.micro_recall_statistic(rows) == pytest.approx(prf.recall)


def test_mismatched_documents_are_refused() -> None:
    with pytest.raises(ValueError):
        bootstrap.paired_bootstrap([0.1, 0.2], [0.1], n_resamples=10)
