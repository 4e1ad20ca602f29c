"""Score calibration: raw ranker score -> estimated probability that the code is correct.

Fitted on held-out predictions only. Parameters are plain numbers so that they live in the pack manifest
and round-trip exactly. Measuring calibration (expected calibration error, reliability bins) lives here too,
the one home of those metrics: training and evaluation both read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Method = Literal["identity", "isotonic", "platt"]
N_BINS = 15
"""Equal-width confidence bins of the expected calibration error and the reliability diagram."""


@dataclass
class Calibrator:
    """A monotone map from raw scores to probabilities."""

    method: Method = "identity"
    x: list[float] = field(default_factory=list)
    """Isotonic knots (increasing raw scores)."""
    y: list[float] = field(default_factory=list)
    """Isotonic values at the knots."""
    a: float = 1.0
    """Platt slope: p = 1 / (1 + exp(-(a * s + b)))."""
    b: float = 0.0

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=float)
        if self.method == "isotonic" and self.x:
            out = np.interp(s, np.asarray(self.x), np.asarray(self.y))
        elif self.method == "platt":
            out = 1.0 / (1.0 + np.exp(-(self.a * s + self.b)))
        else:
            out = s
        return np.clip(out, 0.0, 1.0)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "x": list(self.x), "y": list(self.y), "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibrator:
        method = str(data.get("method", "identity"))
        if method not in ("identity", "isotonic", "platt"):
            raise ValueError(f"unknown calibration method {method!r}")
        return cls(
            method=method,  # type: ignore[arg-type]
            x=[float(v) for v in data.get("x", [])],
            y=[float(v) for v in data.get("y", [])],
            a=float(data.get("a", 1.0)),
            b=float(data.get("b", 0.0)),
        )


def fit_isotonic(scores: np.ndarray, labels: np.ndarray, max_knots: int = 400) -> Calibrator:
    """Isotonic regression of labels on scores, stored as at most `max_knots` interpolation knots."""
    from sklearn.isotonic import IsotonicRegression

    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    if s.size == 0 or y.min() == y.max():
        return fit_platt(s, y)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y)
    xs = np.asarray(iso.X_thresholds_, dtype=float)
    ys = np.asarray(iso.y_thresholds_, dtype=float)
    if len(xs) > max_knots:
        keep = np.unique(np.r_[np.linspace(0, len(xs) - 1, max_knots).astype(int), len(xs) - 1])
        xs, ys = xs[keep], ys[keep]
    return Calibrator(method="isotonic", x=[float(v) for v in xs], y=[float(v) for v in ys])


def fit_platt(scores: np.ndarray, labels: np.ndarray) -> Calibrator:
    """Logistic (Platt) calibration of labels on scores."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    if s.size == 0 or y.min() == y.max():
        p = float(y.mean()) if y.size else 0.5
        p = min(max(p, 1e-6), 1 - 1e-6)
        return Calibrator(method="platt", a=0.0, b=float(np.log(p / (1 - p))))
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6).fit(s.reshape(-1, 1), y.astype(int))
    return Calibrator(method="platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))


# ---------------------------------------------------------------------------------------------- measuring


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
