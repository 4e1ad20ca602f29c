"""Fit the trained default model (preset "default") on coded encounters.

1. Read every training note once (mentions, sentences, vectors, mention candidates).
2. Per task, K-fold: document classifiers and code counts fitted on the other folds score each fold, so
   the ranker's training rows carry out-of-fold classifier probabilities and priors (never overfit ones).
3. The ranker (histogram gradient boosting) is fitted on those rows. Its own held-out scores — K-fold
   out-of-fold by default, or a held-out share of the training documents (`holdout`) — fit the
   calibration and tune the thresholds. The reported split is never used for any of this.
4. The classifiers and code counts are refitted on all training documents for serving.

The model carries what it read the notes with: the text pipeline (its full lexicon, built once here from
`lexicon_dir`), the code vectors, and the rules config; its pack needs no datasets folder.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from medcode.data.types import Encounter
from medcode.model.calibration import Calibrator, expected_calibration_error, fit_isotonic, fit_platt
from medcode.model.candidates.dense import Encoder
from medcode.model.candidates.generate import Candidate, EncounterView
from medcode.model.catalog import Knowledge
from medcode.model.pack import fingerprint_texts
from medcode.model.rules.pipeline import RulesConfig
from medcode.model.runtime import TRAINING_PRECISION, Runtime
from medcode.model.text.pipeline import TextPipeline
from medcode.model.text.sources import full_pipeline
from medcode.model.thresholds import tune_task_thresholds
from medcode.model.trained.classifier import ClassifierConfig, DocScores, DocumentClassifier
from medcode.model.trained.coder import (
    SYSTEM_OF,
    TASKS,
    WALK_KINDS,
    CodeResources,
    DefaultCoder,
    DefaultConfig,
    Prepared,
    TaskModel,
    ranker_scores,
    task_rows,
    walk_kind,
)
from medcode.model.trained.features import CATEGORICAL, FEATURES
from medcode.model.trained.memory import MemoryHit, SentenceMemory

log = logging.getLogger(__name__)

Progress = Callable[[Sequence[Any], str], Sequence[Any]]
Evidence = dict[str, list[tuple[str, str, str, int, int]]]
"""encounter id -> [(task, code, document id, start, end)]: text spans known to support gold codes."""


def _no_progress(items: Sequence[Any], desc: str) -> Sequence[Any]:
    return items


@dataclass
class _Counts:
    """Stand-in for a TaskModel while building out-of-fold rows (only the priors are read)."""

    train_count: dict[str, int]
    n_train_docs: int


@dataclass
class TaskFit:
    """Diagnostics of one task's fit (logged to MLflow by the trainer)."""

    rows: int = 0
    """Ranker training rows: (document, proposed code) pairs of the task."""
    positives: int = 0
    """Rows whose code is a gold code."""
    missed: int = 0
    """Gold codes no candidate source proposed (the ranker cannot learn them)."""
    heldout_ece: float = 0.0
    """Expected calibration error of the calibrated scores on the held-out (or out-of-fold) rows."""
    heldout_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    heldout_labels: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Those rows' calibrated confidences, and whether each row's code is gold."""


def training_fingerprint(encounters: Sequence[Encounter]) -> str:
    items = []
    for enc in sorted(encounters, key=lambda e: e.encounter_id):
        gold = enc.gold
        codes = ",".join(sorted(gold.diagnosis)) + "|" + ",".join(sorted(gold.procedure)) if gold else ""
        items.append(enc.encounter_id)
        items.extend(d.text for d in enc.documents)
        items.append(codes)
    return fingerprint_texts(items)


def fit_default(
    train: Sequence[Encounter],
    knowledge: Knowledge,
    config: DefaultConfig | None = None,
    *,
    pipeline: TextPipeline | None = None,
    lexicon_dir: Path | None = None,
    cache_dir: Path | None = None,
    rules: RulesConfig | None = None,
    runtime: Runtime | None = None,
    holdout: float = 0.0,
    progress: Progress = _no_progress,
    dataset: str = "",
    resources: CodeResources | None = None,
    prepared: list[Prepared] | None = None,
    evidence: Evidence | None = None,
    encoder: Encoder | None = None,
) -> tuple[DefaultCoder, dict[str, TaskFit]]:
    """Fit the default model.

    `pipeline` is the text pipeline the model reads notes with (None: the full one of `lexicon_dir`, the
    datasets folder with the ICD-10-CM index, Disease Ontology and CodiEsp train, built now). `cache_dir`
    keeps the compiled lexicon and the code vectors between fits; `rules` is the coding-rules config the
    model runs (default: on, no NCCI edits). `resources` and `prepared` (notes already read with `pipeline`)
    may be passed in to reuse work across fits (experiments, tests). `encoder` is the sentence encoder
    of dense retrieval (None: the packaged one; a linked one travels inside the pack). `runtime` computes the
    vectors the pack stores (default: float32 on any machine, `TRAINING_PRECISION`)."""
    config = config or DefaultConfig()
    runtime = runtime or Runtime(precision=TRAINING_PRECISION)
    started = time.perf_counter()
    train = [e for e in train if e.gold is not None]
    if len(train) < 4:
        from medcode.data.errors import InvalidInputError

        raise InvalidInputError(f"the default model needs at least 4 coded encounters, got {len(train)}")
    pipeline = pipeline or full_pipeline(lexicon_dir, cache_dir)
    pcs_codes = sorted({c for e in train for c in (e.gold.procedure if e.gold else [])})
    cm_codes = sorted({c for e in train for c in (e.gold.diagnosis if e.gold else [])})
    if resources is None:
        resources = CodeResources(
            knowledge,
            config,
            extra_pcs_codes=pcs_codes,
            training_codes=cm_codes,
            runtime=runtime,
            cache_dir=cache_dir,
            encoder=encoder,
        )
    log.info("resources ready in %.1f s", time.perf_counter() - started)
    if prepared is None:
        prepared = resources.prepare_many(train, pipeline.extract, progress)
    log.info("notes read in %.1f s", time.perf_counter() - started)
    rng = np.random.default_rng(config.seed)
    n = len(train)
    folds = max(2, min(config.folds, n))
    fold_of = rng.permutation(np.arange(n) % folds)
    heldout_mask = np.zeros(n, dtype=bool)
    if holdout > 0:
        heldout_mask[rng.permutation(n)[: max(1, round(n * holdout))]] = True
    if config.index_walk and config.fit_walk_floors:
        diagnoses = [set(e.gold.diagnosis) if e.gold else set() for e in train]
        floors = fit_walk_floors([(p.view, p.candidates) for p in prepared], diagnoses)
        config = replace(config, walk_floors=floors)
        log.info("index walk confidence floors: %s", floors)
    tasks: dict[str, TaskModel] = {}
    fits: dict[str, TaskFit] = {}
    for task in TASKS:
        labels = [set(e.gold.codes(task)) if e.gold else set() for e in train]
        if sum(len(g) for g in labels) == 0:
            log.info("no %s labels in the training data; task skipped", task)
            continue
        pairs = memory_pairs(resources, prepared, task, labels, evidence)
        model, fit = _fit_task(
            task, resources, prepared, labels, pairs, fold_of, heldout_mask, config, progress
        )
        tasks[task] = model
        fits[task] = fit
    fingerprint = training_fingerprint(train)
    version = f"default-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{fingerprint[:8]}"
    coder = DefaultCoder(
        resources,
        tasks,
        config,
        pipeline=pipeline,
        rules=rules,
        version=version,
        training_data={
            "dataset": dataset,
            "documents": n,
            "fingerprint": fingerprint,
            "holdout": holdout,
            "calibration_data": f"{holdout:.0%} of train held out"
            if holdout > 0
            else f"{folds}-fold out-of-fold",
        },
    )
    log.info("default model fitted in %.1f s", time.perf_counter() - started)
    return coder, fits


WALK_FLOOR_MIN_SUPPORT = 30
"""Walk codes of a kind needed on the training notes before its precision is trusted as a floor."""


def fit_walk_floors(
    notes: Sequence[tuple[EncounterView, dict[tuple[str, str], Candidate]]],
    gold: Sequence[set[str]],
    min_support: int = WALK_FLOOR_MIN_SUPPORT,
) -> dict[str, float]:
    """The confidence floor of diagnosis codes the index walk vouches for, by walk kind (`walk_kind`): the
    Wilson 95% lower bound of the share of such codes that are gold codes of their training note (a walk
    code short of its 7th character counts when a gold code extends it). Kinds seen fewer than
    `min_support` times get no floor."""
    seen = dict.fromkeys(WALK_KINDS, 0)
    right = dict.fromkeys(WALK_KINDS, 0)
    for (view, candidates), codes in zip(notes, gold, strict=True):
        wanted = [c.replace(".", "").upper() for c in codes]
        for (system, code), cand in candidates.items():
            if system != SYSTEM_OF["diagnosis"]:
                continue
            kind = walk_kind(view, cand)
            if kind is None:
                continue
            seen[kind] += 1
            stem = code.replace(".", "").upper()
            right[kind] += any(g.startswith(stem) for g in wanted)
    return {
        kind: round(wilson_lower_bound(right[kind], seen[kind]), 4)
        for kind in WALK_KINDS
        if seen[kind] >= min_support
    }


def wilson_lower_bound(successes: int, trials: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval of a proportion (0 for no trials)."""
    if trials == 0:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * ((p * (1 - p) + z * z / (4 * trials)) / trials) ** 0.5
    return max(0.0, (centre - spread) / (1 + z * z / trials))


def _fit_task(
    task: str,
    resources: CodeResources,
    prepared: list[Prepared],
    labels: list[set[str]],
    pairs: list[dict[int, set[str]]],
    fold_of: np.ndarray,
    heldout_mask: np.ndarray,
    config: DefaultConfig,
    progress: Progress,
) -> tuple[TaskModel, TaskFit]:
    n = len(prepared)
    texts = [p.text for p in prepared]
    vectors = _doc_vectors(prepared)
    clf_config = ClassifierConfig(**config.classifier)
    folds = int(fold_of.max()) + 1
    # rows with out-of-fold classifier scores and priors
    doc_scores: list[DocScores | None] = [None] * n
    doc_memory: list[dict[str, MemoryHit]] = [{} for _ in range(n)]
    counts_of_fold: list[_Counts] = []
    for k in progress(list(range(folds)), f"{task}: out-of-fold classifiers"):
        inside = np.nonzero(fold_of != k)[0]
        outside = np.nonzero(fold_of == k)[0]
        clf = DocumentClassifier(clf_config).fit(
            [texts[i] for i in inside], [sorted(labels[i]) for i in inside], _take(vectors, inside)
        )
        for j, s in zip(
            outside, clf.scores([texts[j] for j in outside], _take(vectors, outside)), strict=True
        ):
            doc_scores[int(j)] = s
        counts = Counter(c for i in inside for c in labels[i])
        counts_of_fold.append(_Counts(dict(counts), len(inside)))
        memory = build_memory(prepared, pairs, inside, config)
        if memory is not None:
            for j in outside:
                doc_memory[int(j)] = memory.query(prepared[int(j)].view.sentence_vectors)
    keys: list[list[str]] = []
    blocks: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    missed = 0
    for i in range(n):
        scores = doc_scores[i]
        assert scores is not None
        codes, x = task_rows(
            resources, prepared[i], task, counts_of_fold[int(fold_of[i])], scores, doc_memory[i], config
        )
        keys.append(codes)
        blocks.append(x)
        ys.append(np.fromiter((c in labels[i] for c in codes), dtype=bool, count=len(codes)))
        missed += len(labels[i] - set(codes))
    doc_index = np.concatenate([np.full(len(k), i) for i, k in enumerate(keys)]) if keys else np.zeros(0, int)
    x_all = np.vstack(blocks)
    y_all = np.concatenate(ys)
    fit = TaskFit(rows=len(y_all), positives=int(y_all.sum()), missed=missed)
    log.info("%s: %d rows, %d positives, %d gold codes never proposed", task, fit.rows, fit.positives, missed)
    # held-out ranker scores -> calibration and thresholds
    if heldout_mask.any():
        fit_rows = ~heldout_mask[doc_index]
        ranker = _fit_ranker(config, x_all[fit_rows], y_all[fit_rows])
        held = ~fit_rows
        raw = ranker_scores(ranker, x_all[held])
        y_held, doc_held = y_all[held], doc_index[held]
        positives_held = sum(len(labels[i]) for i in range(n) if heldout_mask[i])
        final_ranker = ranker
    else:
        raw = np.zeros(len(y_all))
        ranker_fold = fold_of % max(2, min(config.ranker_folds, folds))
        for k in progress(sorted(set(ranker_fold.tolist())), f"{task}: out-of-fold ranker"):
            inside = ranker_fold[doc_index] != k
            ranker = _fit_ranker(config, x_all[inside], y_all[inside])
            raw[~inside] = ranker_scores(ranker, x_all[~inside])
        y_held, doc_held = y_all, doc_index
        positives_held = sum(len(g) for g in labels)
        final_ranker = _fit_ranker(config, x_all, y_all)
    keep = _top_per_doc(raw, doc_held, 50)
    raw, y_held = raw[keep], y_held[keep]
    calibrator: Calibrator = (
        fit_isotonic(raw, y_held) if config.calibration == "isotonic" else fit_platt(raw, y_held)
    )
    conf = calibrator(raw)
    codes_held = [keys[d][j] for d, j in _positions(doc_held[keep], keys, keep, doc_held)]
    thresholds = tune_task_thresholds(
        codes_held,
        conf,
        y_held,
        n_positive=positives_held,
        min_code_support=config.per_code_min_support,
        target_precision=config.target_precision,
    )
    fit.heldout_ece = expected_calibration_error(conf, y_held)
    fit.heldout_scores, fit.heldout_labels = conf, y_held
    log.info(
        "%s: threshold %.3f (%d per-code), auto-accept %.3f, held-out ECE %.4f",
        task,
        thresholds.decision,
        len(thresholds.per_code),
        thresholds.auto_accept,
        fit.heldout_ece,
    )
    # serving classifier and priors on all training documents
    classifier = DocumentClassifier(clf_config).fit(texts, [sorted(g) for g in labels], vectors)
    counts = Counter(c for g in labels for c in g)
    model = TaskModel(
        classifier=classifier,
        ranker=final_ranker,
        calibrator=calibrator,
        thresholds=thresholds,
        train_count=dict(counts),
        n_train_docs=n,
        memory=build_memory(prepared, pairs, np.arange(n), config),
    )
    return model, fit


def memory_pairs(
    resources: CodeResources,
    prepared: Sequence[Prepared],
    task: str,
    labels: Sequence[set[str]],
    evidence: Evidence | None,
) -> list[dict[int, set[str]]]:
    """Per document: sentence index -> gold codes that sentence supports.

    From `evidence` spans when given for the document; otherwise each gold code goes to the sentence most
    similar to its title (when the similarity is at least 0.5).
    """
    system = SYSTEM_OF[task]
    out: list[dict[int, set[str]]] = []
    for p, gold in zip(prepared, labels, strict=True):
        view = p.view
        found: dict[int, set[str]] = {}
        spans = (evidence or {}).get(view.encounter.encounter_id)
        if spans is not None:
            for t, code, doc_id, start, end in spans:
                if t != task or code not in gold:
                    continue
                for k, s in enumerate(view.sentences):
                    if s.document_id == doc_id and s.start < end and start < s.end:
                        found.setdefault(k, set()).add(code)
        elif view.sentence_vectors is not None and len(view.sentence_vectors):
            for code in gold:
                vector = resources.code_vector(system, code)
                if vector is None:
                    continue
                sims = view.sentence_vectors @ vector
                k = int(np.argmax(sims))
                if sims[k] >= 0.5:
                    found.setdefault(k, set()).add(code)
        out.append(found)
    return out


def build_memory(
    prepared: Sequence[Prepared],
    pairs: Sequence[dict[int, set[str]]],
    docs: np.ndarray,
    config: DefaultConfig,
) -> SentenceMemory | None:
    vectors: list[np.ndarray] = []
    codes: list[list[str]] = []
    for i in docs:
        sv = prepared[int(i)].view.sentence_vectors
        if sv is None:
            continue
        for k, found in sorted(pairs[int(i)].items()):
            vectors.append(sv[k])
            codes.append(sorted(found))
    if not vectors:
        return None
    return SentenceMemory(np.vstack(vectors), codes, k=config.memory_k, min_score=config.memory_min_score)


def _fit_ranker(config: DefaultConfig, x: np.ndarray, y: np.ndarray) -> Any:
    """Fit on one thread: on a shared 2-core machine OpenMP threads mostly wait for each other."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _ranker(config).fit(x, y)


def _ranker(config: DefaultConfig) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    categorical = [FEATURES.index(name) for name in CATEGORICAL]
    mask = np.zeros(len(FEATURES), dtype=bool)
    mask[categorical] = True
    return HistGradientBoostingClassifier(
        max_iter=config.ranker_max_iter,
        learning_rate=config.ranker_learning_rate,
        max_leaf_nodes=config.ranker_max_leaf_nodes,
        min_samples_leaf=config.ranker_min_samples_leaf,
        l2_regularization=config.ranker_l2_regularization,
        categorical_features=mask,
        early_stopping=False,
        random_state=config.seed,
    )


def _doc_vectors(prepared: Sequence[Prepared]) -> np.ndarray | None:
    if any(p.document_vector is None for p in prepared):
        return None
    return np.vstack([p.document_vector for p in prepared if p.document_vector is not None])


def _take(vectors: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if vectors is None else vectors[idx]


def _top_per_doc(scores: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` best-scored rows of every document (what a Result keeps per task)."""
    keep: list[int] = []
    for d in np.unique(docs):
        rows = np.nonzero(docs == d)[0]
        keep.extend(rows[np.argsort(-scores[rows], kind="stable")[:k]].tolist())
    return np.asarray(sorted(keep), dtype=int)


def _positions(
    docs_kept: np.ndarray, keys: list[list[str]], keep: np.ndarray, doc_held: np.ndarray
) -> list[tuple[int, int]]:
    """(document, position within its candidate list) of each kept held-out row."""
    first_row: dict[int, int] = {}
    for row, d in enumerate(doc_held):
        first_row.setdefault(int(d), row)
    return [(int(doc_held[r]), int(r - first_row[int(doc_held[r])])) for r in keep]
