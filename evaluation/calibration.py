"""Calibration metrics: expected calibration error and the data of a reliability diagram.

Pure functions; the evaluation only *measures* the calibration the model pack carries, it never fits one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_BINS = 15


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


def bin_ids(confidences: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Equal-width bins over [0, 1], closed on the right (an edge value falls in the lower bin), as
    scikit-learn's `calibration_curve(strategy="uniform")` assigns them."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], confidences, side="left")


def reliability_bins(
    confidences: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, n_bins: int = N_BINS
) -> list[ReliabilityBin]:
    """Count, mean confidence and observed accuracy per equal-width confidence bin."""
    conf = np.asarray(confidences, dtype=float)
    lab = np.asarray(labels, dtype=float)
    if conf.shape != lab.shape:
        raise ValueError("confidences and labels must have the same length")
    if conf.size and (conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidences must lie in [0, 1]")
    ids = bin_ids(conf, n_bins)
    counts = np.bincount(ids, minlength=n_bins)
    conf_sums = np.bincount(ids, weights=conf, minlength=n_bins)
    label_sums = np.bincount(ids, weights=lab, minlength=n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = []
    for b in range(n_bins):
        n = int(counts[b])
        out.append(
            ReliabilityBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=n,
                mean_confidence=float(conf_sums[b] / n) if n else None,
                accuracy=float(label_sums[b] / n) if n else None,
            )
        )
    return out


def expected_calibration_error(
    confidences: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, n_bins: int = N_BINS
) -> float:
    """ECE = sum over bins of (bin share) x |accuracy - mean confidence|; 0.0 for no pairs."""
    bins = reliability_bins(confidences, labels, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return 0.0
    return float(
        sum(b.count / total * abs((b.accuracy or 0.0) - (b.mean_confidence or 0.0)) for b in bins if b.count)
    )
