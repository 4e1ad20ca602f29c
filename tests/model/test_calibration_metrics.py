"""Expected calibration error and reliability bins: by hand and against scikit-learn's calibration curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from medcode.model.calibration import N_BINS, expected_calibration_error, reliability_bins


def test_ece_by_hand() -> None:
    # two bins used (of 15): [0.8, 0.8667) holds 0.81 x2 with 1 correct -> |0.5 - 0.81|;
    # last bin holds 0.95, 0.97 both correct -> |1 - 0.96|
    conf = [0.81, 0.81, 0.95, 0.97]
    labels = [1, 0, 1, 1]
    expected = 0.5 * abs(0.5 - 0.81) + 0.5 * abs(1.0 - 0.96)
    assert expected_calibration_error(conf, labels) == pytest.approx(expected)


def test_perfectly_calibrated_bins_give_zero_ece() -> None:
    conf = [0.5, 0.5, 1.0, 0.0]
    labels = [1, 0, 1, 0]
    assert expected_calibration_error(conf, labels) == pytest.approx(0.0)


def test_ece_of_nothing_is_zero() -> None:
    assert expected_calibration_error([], []) == 0.0


def test_reliability_bins_are_fifteen_equal_width_with_counts() -> None:
    bins = reliability_bins([0.0, 0.5, 1.0, 1 / 15], [0, 1, 1, 0])
    assert len(bins) == N_BINS
    assert bins[0].lower == 0.0 and bins[-1].upper == 1.0
    assert sum(b.count for b in bins) == 4
    # an edge value falls in the lower bin (as scikit-learn assigns it), 1.0 in the last
    assert bins[0].count == 2
    assert bins[-1].count == 1 and bins[-1].accuracy == 1.0
    assert bins[3].mean_confidence is None


def test_confidences_outside_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError):
        reliability_bins([1.2], [1])


@pytest.mark.parametrize("seed", range(6))
def test_ece_matches_sklearn_calibration_curve(seed: int) -> None:
    rng = np.random.default_rng(seed)
    conf = rng.random(400)
    labels = (rng.random(400) < conf**1.5).astype(int)
    prob_true, prob_pred = calibration_curve(labels, conf, n_bins=N_BINS, strategy="uniform")
    counts = np.histogram(conf, bins=np.linspace(0, 1, N_BINS + 1))[0]
    counts = counts[counts > 0]
    expected = float(np.sum(counts / counts.sum() * np.abs(prob_true - prob_pred)))
    assert expected_calibration_error(conf, labels) == pytest.approx(expected)
    bins = [b for b in reliability_bins(conf, labels) if b.count]
    assert [b.accuracy for b in bins] == pytest.approx(list(prob_true))
    assert [b.mean_confidence for b in bins] == pytest.approx(list(prob_pred))
