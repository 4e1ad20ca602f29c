"""Bootstrap confidence intervals over documents: one model, and two models paired on the same documents.

A statistic receives the per-document rows of one resample (a 1-D array of values, or a 2-D array of
per-document counts) and returns one number. Documents are resampled with replacement; the same resampled
documents score both models of a pair, so the interval is about the difference on the same notes.

    ap_a, ap_b = per-document average precision of models A and B (nan where a document has no gold)
    paired_bootstrap(ap_a, ap_b)                        # MAP difference B - A with its 95% interval
    bootstrap_ci(ap_b)                                  # MAP of B with its 95% interval
    paired_bootstrap(counts_a, counts_b, statistic=micro_f1_statistic)   # rows = (tp, fp, fn)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

Statistic = Callable[[np.ndarray], float]

DEFAULT_RESAMPLES = 1000


def mean_statistic(rows: np.ndarray) -> float:
    """Mean of the non-nan values (MAP over documents with gold codes, P@k, exact match...)."""
    kept = rows[~np.isnan(rows)]
    return float(kept.mean()) if kept.size else 0.0


def ratio_statistic(rows: np.ndarray) -> float:
    """sum(column 0) / sum(column 1): pooled ratios such as candidate recall (found, gold)."""
    den = rows[:, 1].sum()
    return float(rows[:, 0].sum() / den) if den else 0.0


def micro_precision_statistic(rows: np.ndarray) -> float:
    tp, fp = rows[:, 0].sum(), rows[:, 1].sum()
    return float(tp / (tp + fp)) if tp + fp else 0.0


def micro_recall_statistic(rows: np.ndarray) -> float:
    tp, fn = rows[:, 0].sum(), rows[:, 2].sum()
    return float(tp / (tp + fn)) if tp + fn else 0.0


def micro_f1_statistic(rows: np.ndarray) -> float:
    """Micro F1 from per-document (tp, fp, fn) rows."""
    tp, fp, fn = rows[:, 0].sum(), rows[:, 1].sum(), rows[:, 2].sum()
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0


@dataclass(frozen=True)
class Interval:
    """A statistic with its bootstrap interval."""

    value: float
    low: float
    high: float
    confidence: float
    n_resamples: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class PairedDifference:
    """B - A on the same documents, with the bootstrap interval of the difference."""

    a: float
    b: float
    delta: float
    low: float
    high: float
    p_value: float
    """Two-sided bootstrap p-value: twice the smaller share of resamples on either side of zero."""
    confidence: float
    n_resamples: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def resample_indices(n_docs: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """An (n_resamples, n_docs) array of document indices drawn with replacement."""
    if n_docs <= 0:
        raise ValueError("the bootstrap needs at least one document")
    if n_resamples <= 0:
        raise ValueError("n_resamples must be positive")
    return np.random.default_rng(seed).integers(0, n_docs, size=(n_resamples, n_docs))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    statistic: Statistic = mean_statistic,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Percentile bootstrap interval of `statistic` over one model's per-document rows."""
    rows = np.asarray(values, dtype=float)
    idx = resample_indices(len(rows), n_resamples, seed)
    stats = np.array([statistic(rows[i]) for i in idx])
    low, high = _percentiles(stats, confidence)
    return Interval(statistic(rows), low, high, confidence, n_resamples)


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    statistic: Statistic = mean_statistic,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedDifference:
    """Paired bootstrap of statistic(B) - statistic(A): both models scored on the same resampled documents."""
    rows_a = np.asarray(a, dtype=float)
    rows_b = np.asarray(b, dtype=float)
    if rows_a.shape != rows_b.shape:
        raise ValueError(
            f"both models need rows for the same documents, got {rows_a.shape} and {rows_b.shape}"
        )
    idx = resample_indices(len(rows_a), n_resamples, seed)
    deltas = np.array([statistic(rows_b[i]) - statistic(rows_a[i]) for i in idx])
    low, high = _percentiles(deltas, confidence)
    value_a, value_b = statistic(rows_a), statistic(rows_b)
    p_value = min(1.0, 2 * min(float(np.mean(deltas <= 0)), float(np.mean(deltas >= 0))))
    return PairedDifference(value_a, value_b, value_b - value_a, low, high, p_value, confidence, n_resamples)


def _percentiles(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie between 0 and 1")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)
