"""The metrics training needs to select and report a model (the evaluation package has the full suite).

MAP follows the CodiEsp evaluation: the average precision of each document's ranked code list against its
gold codes, averaged over the documents that have gold codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from medcode.data.types import Encounter, Result, Task
from medcode.evaluation.metrics import average_precision


def mean_average_precision(ranked: Sequence[Sequence[str]], gold: Sequence[set[str]]) -> float:
    aps = [average_precision(r, g) for r, g in zip(ranked, gold, strict=True) if g]
    return float(np.mean(aps)) if aps else 0.0


def micro_prf(predicted: Sequence[set[str]], gold: Sequence[set[str]]) -> tuple[float, float, float]:
    tp = sum(len(p & g) for p, g in zip(predicted, gold, strict=True))
    n_pred = sum(len(p) for p in predicted)
    n_gold = sum(len(g) for g in gold)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def expected_calibration_error(probs: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    from medcode.model.calibration import expected_calibration_error as ece

    return ece(np.asarray(probs, dtype=float), np.asarray(labels, dtype=float), bins)


def task_metrics(
    results: Sequence[Result],
    encounters: Sequence[Encounter],
    task: Task,
    seen_codes: set[str] | None = None,
    k_recall: int = 50,
) -> dict[str, float]:
    """MAP, micro P/R/F1 of the suggested codes, candidate recall@k, ECE, and recall on unseen codes."""
    ranked, gold, predicted = [], [], []
    probs: list[float] = []
    labels: list[bool] = []
    for result, enc in zip(results, encounters, strict=True):
        g = set(enc.gold.codes(task)) if enc.gold else set()
        items = result.ranked(task)
        ranked.append([c.code for c in items])
        gold.append(g)
        predicted.append({c.code for c in result.codes if c.task == task})
        for c in items:
            probs.append(c.confidence)
            labels.append(c.code in g)
    docs = [i for i, g in enumerate(gold) if g]
    p, r, f1 = micro_prf([predicted[i] for i in docs], [gold[i] for i in docs])
    n_gold = sum(len(gold[i]) for i in docs)
    at_k = sum(len(set(ranked[i][:k_recall]) & gold[i]) for i in docs)
    out = {
        "map": mean_average_precision([ranked[i] for i in docs], [gold[i] for i in docs]),
        "micro_precision": p,
        "micro_recall": r,
        "micro_f1": f1,
        f"recall_at_{k_recall}": at_k / n_gold if n_gold else 0.0,
        "ece": expected_calibration_error(probs, labels),
        "documents": float(len(docs)),
    }
    if seen_codes is not None:
        unseen = [(i, c) for i in docs for c in gold[i] if c not in seen_codes]
        out["unseen_gold"] = float(len(unseen))
        out["unseen_recall"] = sum(1 for i, c in unseen if c in predicted[i]) / len(unseen) if unseen else 0.0
        out[f"unseen_recall_at_{k_recall}"] = (
            sum(1 for i, c in unseen if c in ranked[i][:k_recall]) / len(unseen) if unseen else 0.0
        )
    return out


def summarize(metrics: Mapping[str, Mapping[str, float]]) -> str:
    parts = []
    for task, values in metrics.items():
        parts.append(
            f"{task}: MAP {values.get('map', 0):.3f} F1 {values.get('micro_f1', 0):.3f} "
            f"R@50 {values.get('recall_at_50', 0):.3f} ECE {values.get('ece', 0):.3f}"
        )
    return "; ".join(parts)
