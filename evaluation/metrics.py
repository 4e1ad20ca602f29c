"""Pure metric functions over ranked code lists and predicted code sets.

Every function takes plain Python values (codes as strings, confidences as floats) and returns numbers or
small dataclasses; nothing here reads files, models or settings. Each is checked in the tests against
hand-computed cases and, where scikit-learn has the same metric, against scikit-learn.

Conventions:
- a *ranking* is a sequence of distinct codes, best first; a *scored ranking* pairs them with confidences;
- *gold* is the set of a document's gold codes; *predicted* the set of codes the model suggested (its
  positives at its own tuned thresholds);
- ranking metrics (MAP, P@k, R@k) average over documents that have at least one gold code, as the CodiEsp
  evaluation (trec_eval) averages over the queries of the relevance file.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

ScoredRanking = Sequence[tuple[str, float]]
CodeFilter = Callable[[str], bool]


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 with the counts behind them (counts are None for macro averages)."""

    precision: float
    recall: float
    f1: float
    tp: int | None = None
    fp: int | None = None
    fn: int | None = None


def f1_score(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else 0.0


def filter_codes(codes: Iterable[str], valid: CodeFilter | None) -> list[str]:
    """Keep the codes of the valid code set (all when `valid` is None), order and duplicates dropped."""
    seen: set[str] = set()
    kept: list[str] = []
    for code in codes:
        if code in seen or (valid is not None and not valid(code)):
            continue
        seen.add(code)
        kept.append(code)
    return kept


# --- ranking metrics --------------------------------------------------------------------------------------


def average_precision(ranking: Sequence[str], gold: Collection[str]) -> float:
    """trec_eval average precision: the sum of precision@rank at each relevant hit over the number of gold codes.

    Gold codes the ranking never reaches count as misses. A document without gold codes has no AP (nan).
    """
    gold_set = set(gold)
    if not gold_set:
        return float("nan")
    hits = 0
    total = 0.0
    seen: set[str] = set()
    rank = 0
    for code in ranking:
        if code in seen:
            continue
        seen.add(code)
        rank += 1
        if code in gold_set:
            hits += 1
            total += hits / rank
    return total / len(gold_set)


def mean_average_precision(
    rankings: Sequence[Sequence[str]],
    golds: Sequence[Collection[str]],
    valid: CodeFilter | None = None,
) -> float:
    """MAP as the CodiEsp official evaluation computes it.

    Codes outside the valid code set are dropped from both the ranking and the gold before scoring (the
    ranking closes up); documents left without gold codes are not averaged; a document with gold codes and
    no ranking scores 0.
    """
    _same_length(rankings, golds)
    aps = [
        average_precision(filter_codes(r, valid), filter_codes(g, valid))
        for r, g in zip(rankings, golds, strict=True)
    ]
    return nanmean(aps)


def _hits_at_k(ranking: Sequence[str], gold: set[str], k: int) -> int:
    """How many of the top k distinct codes are gold."""
    if k <= 0:
        raise ValueError("k must be positive")
    return sum(1 for code in _dedup(ranking)[:k] if code in gold)


def precision_at_k(ranking: Sequence[str], gold: Collection[str], k: int) -> float:
    """Share of the top k that is gold; the denominator is k even when the ranking is shorter."""
    return _hits_at_k(ranking, set(gold), k) / k


def recall_at_k(ranking: Sequence[str], gold: Collection[str], k: int) -> float:
    """Share of the gold codes found in the top k (nan without gold codes)."""
    gold_set = set(gold)
    hits = _hits_at_k(ranking, gold_set, k)
    return hits / len(gold_set) if gold_set else float("nan")


def mean_precision_at_k(rankings: Sequence[Sequence[str]], golds: Sequence[Collection[str]], k: int) -> float:
    """P@k averaged over documents with gold codes."""
    _same_length(rankings, golds)
    return nanmean(
        precision_at_k(r, g, k) if g else float("nan") for r, g in zip(rankings, golds, strict=True)
    )


def mean_recall_at_k(rankings: Sequence[Sequence[str]], golds: Sequence[Collection[str]], k: int) -> float:
    """R@k averaged over documents with gold codes."""
    _same_length(rankings, golds)
    return nanmean(recall_at_k(r, g, k) for r, g in zip(rankings, golds, strict=True))


def candidate_recall(
    rankings: Sequence[Sequence[str]], golds: Sequence[Collection[str]], k: int = 50
) -> float:
    """Micro recall of the top-k ranked codes: gold codes (all documents pooled) found among the top k."""
    _same_length(rankings, golds)
    found = total = 0
    for ranking, gold in zip(rankings, golds, strict=True):
        gold_set = set(gold)
        total += len(gold_set)
        found += sum(1 for code in _dedup(ranking)[:k] if code in gold_set)
    return _ratio(found, total)


# --- set metrics at the model's threshold --------------------------------------------------------------


def micro_prf(predicted: Sequence[Collection[str]], golds: Sequence[Collection[str]]) -> PRF:
    """Micro precision/recall/F1: true positives, false positives and misses pooled over documents."""
    _same_length(predicted, golds)
    tp = fp = fn = 0
    for pred, gold in zip(predicted, golds, strict=True):
        p, g = set(pred), set(gold)
        tp += len(p & g)
        fp += len(p - g)
        fn += len(g - p)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return PRF(precision, recall, f1_score(precision, recall), tp, fp, fn)


def per_code_counts(
    predicted: Sequence[Collection[str]], golds: Sequence[Collection[str]]
) -> dict[str, tuple[int, int, int]]:
    """(tp, fp, fn) per code, for every code present in the gold or the predictions."""
    _same_length(predicted, golds)
    counts: dict[str, list[int]] = {}
    for pred, gold in zip(predicted, golds, strict=True):
        p, g = set(pred), set(gold)
        for code in p | g:
            c = counts.setdefault(code, [0, 0, 0])
            if code in p and code in g:
                c[0] += 1
            elif code in p:
                c[1] += 1
            else:
                c[2] += 1
    return {code: (c[0], c[1], c[2]) for code, c in counts.items()}


def macro_prf(predicted: Sequence[Collection[str]], golds: Sequence[Collection[str]]) -> PRF:
    """Macro precision/recall/F1 over the codes present in the gold or in the predictions.

    Per code: precision 0 when never predicted, recall 0 when never in gold, F1 0 when both are 0; the
    macro F1 is the mean of the per-code F1 values (not the F1 of the macro precision and recall), as
    scikit-learn's `average="macro"` with `zero_division=0`.
    """
    counts = per_code_counts(predicted, golds)
    if not counts:
        return PRF(0.0, 0.0, 0.0)
    ps, rs, fs = [], [], []
    for tp, fp, fn in counts.values():
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        ps.append(p)
        rs.append(r)
        fs.append(f1_score(p, r))
    return PRF(float(np.mean(ps)), float(np.mean(rs)), float(np.mean(fs)))


def prf_for_codes(
    predicted: Sequence[Collection[str]], golds: Sequence[Collection[str]], keep: CodeFilter
) -> PRF:
    """Micro precision/recall/F1 restricted to the codes `keep` accepts (a frequency bucket, a chapter)."""
    return micro_prf(
        [[c for c in p if keep(c)] for p in predicted],
        [[c for c in g if keep(c)] for g in golds],
    )


def exact_match(predicted: Sequence[Collection[str]], golds: Sequence[Collection[str]]) -> float:
    """Share of documents whose predicted code set equals the gold set (both empty counts as a match)."""
    _same_length(predicted, golds)
    if not golds:
        return 0.0
    return sum(1 for p, g in zip(predicted, golds, strict=True) if set(p) == set(g)) / len(golds)


# --- AUC ------------------------------------------------------------------------------------------------

UNRANKED_SCORE = -1.0
"""Score given to a code a document's ranking does not hold: below every confidence in [0, 1]."""


def roc_auc(
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties counted half); nan without both classes.

    `weights` lets one row stand for many identical rows (e.g. all the codes a document does not rank).
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
    if not (len(y) == len(s) == len(w)):
        raise ValueError("labels, scores and weights must have the same length")
    pos_total, neg_total = w[y].sum(), w[~y].sum()
    if pos_total == 0 or neg_total == 0:
        return float("nan")
    uniq, inverse = np.unique(s, return_inverse=True)
    pos = np.bincount(inverse, weights=w * y, minlength=len(uniq))
    neg = np.bincount(inverse, weights=w * ~y, minlength=len(uniq))
    neg_below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (pos_total * neg_total))


def micro_auc(scored: Sequence[ScoredRanking], golds: Sequence[Collection[str]]) -> float:
    """Micro AUC over the document x code matrix of every code in the gold or in any ranking.

    Codes a document does not rank score `UNRANKED_SCORE`. Same value as scikit-learn's
    `roc_auc_score(Y, S, average="micro")` on the dense matrix.
    """
    _same_length(scored, golds)
    label_space = _label_space(scored, golds)
    labels: list[int] = []
    scores: list[float] = []
    weights: list[float] = []
    for ranking, gold in zip(scored, golds, strict=True):
        gold_set = set(gold)
        conf = _best_scores(ranking)
        for code, s in conf.items():
            labels.append(int(code in gold_set))
            scores.append(s)
            weights.append(1.0)
        unranked_gold = gold_set - conf.keys()
        if unranked_gold:
            labels.append(1)
            scores.append(UNRANKED_SCORE)
            weights.append(float(len(unranked_gold)))
        rest = len(label_space) - len(conf.keys() | gold_set)
        if rest:
            labels.append(0)
            scores.append(UNRANKED_SCORE)
            weights.append(float(rest))
    return roc_auc(labels, scores, weights)


def macro_auc(scored: Sequence[ScoredRanking], golds: Sequence[Collection[str]]) -> float:
    """Mean per-code AUC over documents, for the codes that have both gold and non-gold documents."""
    _same_length(scored, golds)
    n_docs = len(golds)
    confs = [_best_scores(r) for r in scored]
    gold_sets = [set(g) for g in golds]
    by_code: dict[str, list[tuple[int, float]]] = {}
    for conf, gold in zip(confs, gold_sets, strict=True):
        for code in conf.keys() | gold:
            by_code.setdefault(code, []).append((int(code in gold), conf.get(code, UNRANKED_SCORE)))
    aucs = []
    for rows in by_code.values():
        n_pos = sum(label for label, _ in rows)
        if n_pos == 0 or n_pos == n_docs:
            continue
        labels = [label for label, _ in rows]
        scores = [s for _, s in rows]
        weights = [1.0] * len(rows)
        rest = n_docs - len(rows)
        if rest:
            labels.append(0)
            scores.append(UNRANKED_SCORE)
            weights.append(float(rest))
        aucs.append(roc_auc(labels, scores, weights))
    return float(np.mean(aucs)) if aucs else float("nan")


# --- curves over confidences ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    """One confidence cut-off: codes at or above it are kept (auto-accepted, or predicted)."""

    threshold: float
    precision: float
    recall: float
    n_selected: int
    n_correct: int


def threshold_curve(scored: Sequence[ScoredRanking], golds: Sequence[Collection[str]]) -> list[CurvePoint]:
    """Precision and recall of the codes kept at each distinct confidence cut-off, highest cut-off first.

    Recall divides by every gold code, including those the rankings never reach.
    """
    _same_length(scored, golds)
    n_gold = sum(len(set(g)) for g in golds)
    pairs: list[tuple[float, int]] = []
    for ranking, gold in zip(scored, golds, strict=True):
        gold_set = set(gold)
        pairs.extend((s, int(code in gold_set)) for code, s in _best_scores(ranking).items())
    if not pairs:
        return []
    conf = np.array([p[0] for p in pairs])
    lab = np.array([p[1] for p in pairs])
    order = np.argsort(-conf, kind="stable")
    conf, lab = conf[order], lab[order]
    cum_correct = np.cumsum(lab)
    # the last index of each run of equal confidence: everything up to it is kept at that cut-off
    last = np.flatnonzero(np.r_[conf[1:] != conf[:-1], True])
    return [
        CurvePoint(
            threshold=float(conf[i]),
            precision=float(cum_correct[i] / (i + 1)),
            recall=_ratio(float(cum_correct[i]), n_gold),
            n_selected=int(i + 1),
            n_correct=int(cum_correct[i]),
        )
        for i in last
    ]


@dataclass(frozen=True)
class AutomationSummary:
    """Automation at a target precision (issue 5): recall of auto-accepted codes and whole encounters."""

    target_precision: float
    threshold: float | None
    recall: float
    precision: float | None
    encounters_auto_accepted: float


def automation_at_precision(
    suggested: Sequence[ScoredRanking], golds: Sequence[Collection[str]], target: float = 0.95
) -> AutomationSummary:
    """Recall at the lowest confidence cut-off whose auto-accepted suggestions keep precision >= target.

    Only the model's suggested codes (its positives) can be auto-accepted. An encounter is auto-accepted
    whole at the cut-off when it has at least one suggested code and all of them reach the cut-off.
    Recall, and the encounter share, are 0.0 when no cut-off reaches the target.
    """
    curve = threshold_curve(suggested, golds)
    ok = [p for p in curve if p.precision >= target]
    if not ok:
        return AutomationSummary(target, None, 0.0, None, 0.0)
    best = min(ok, key=lambda p: p.threshold)
    whole = sum(1 for ranking in suggested if ranking and all(s >= best.threshold for _, s in ranking))
    return AutomationSummary(
        target, best.threshold, best.recall, best.precision, _ratio(whole, len(suggested))
    )


# --- helpers --------------------------------------------------------------------------------------------


def nanmean(values: Iterable[float]) -> float:
    """Mean of the non-nan values; 0.0 when there are none."""
    kept = [v for v in values if v == v]
    return float(sum(kept) / len(kept)) if kept else 0.0


def _dedup(ranking: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ranking))


def _best_scores(ranking: ScoredRanking) -> dict[str, float]:
    """code -> confidence; a code listed twice keeps its first (best-ranked) confidence."""
    out: dict[str, float] = {}
    for code, score in ranking:
        out.setdefault(code, float(score))
    return out


def _label_space(scored: Sequence[ScoredRanking], golds: Sequence[Collection[str]]) -> set[str]:
    space: set[str] = set()
    for ranking, gold in zip(scored, golds, strict=True):
        space.update(code for code, _ in ranking)
        space.update(gold)
    return space


def _same_length(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise ValueError(f"expected one entry per document on both sides, got {len(a)} and {len(b)}")


# ---------------------------------------------------------------------------------------------- latency


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else 0.0


def latency_summary(latencies: Sequence[float], total_seconds: float | None = None) -> dict[str, float]:
    """p50/p95/p99/mean/max latency in milliseconds and notes per second."""
    if not latencies:
        return {}
    total = total_seconds if total_seconds is not None else sum(latencies)
    return {
        "latency_p50_ms": percentile(latencies, 50) * 1000,
        "latency_p95_ms": percentile(latencies, 95) * 1000,
        "latency_p99_ms": percentile(latencies, 99) * 1000,
        "latency_mean_ms": sum(latencies) / len(latencies) * 1000,
        "latency_max_ms": max(latencies) * 1000,
        "notes_per_second": len(latencies) / total if total > 0 else 0.0,
        "seconds": total,
    }
