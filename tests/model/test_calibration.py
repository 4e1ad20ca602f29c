from __future__ import annotations

import numpy as np

from medcode.model.calibration import Calibrator, expected_calibration_error, fit_isotonic, fit_platt


def _miscalibrated(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.random(n)
    labels = rng.random(n) < raw**2  # true probability is raw squared: raw scores are overconfident
    return raw, labels


def test_isotonic_calibration_lowers_ece_on_new_data() -> None:
    raw, labels = _miscalibrated(seed=0)
    cal = fit_isotonic(raw, labels)
    test_raw, test_labels = _miscalibrated(seed=1)
    assert expected_calibration_error(test_raw, test_labels) > 0.1
    assert expected_calibration_error(cal(test_raw), test_labels) < 0.03


def test_platt_calibration_is_monotone() -> None:
    raw, labels = _miscalibrated()
    cal = fit_platt(raw, labels)
    out = cal(np.linspace(0, 1, 50))
    assert np.all(np.diff(out) >= 0)


def test_calibrator_round_trips_exactly() -> None:
    raw, labels = _miscalibrated()
    cal = fit_isotonic(raw, labels)
    again = Calibrator.from_json(cal.to_json())
    grid = np.linspace(-0.5, 1.5, 101)
    np.testing.assert_array_equal(cal(grid), again(grid))


def test_ece_matches_hand_computed_value() -> None:
    probs = np.array([0.05, 0.15, 0.95, 0.85])
    labels = np.array([0, 1, 1, 1])
    # bins: [0.0,0.1): p=.05 acc=0; [0.1,0.2): p=.15 acc=1; [0.8,0.9): .85/1; [0.9,1.0]: .95/1
    expected = 0.25 * (0.05 + 0.85 + 0.15 + 0.05)
    assert abs(expected_calibration_error(probs, labels) - expected) < 1e-12
