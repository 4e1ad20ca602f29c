"""Features of one (encounter, code) pair for the ranker.

The same function builds training rows and inference rows, so the ranker always sees the same signals:
mention retrieval (lexicon, lexical, dense, combination pairs, history), assertion and section of the
supporting mentions, document classifier scores, code priors from training, and the code's place in the
classification.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from medcode.model.candidates.dense import steady
from medcode.model.candidates.generate import MENTION_TYPES, SECTIONS, Candidate, EncounterView, Hit
from medcode.model.catalog import CodeInfo
from medcode.model.trained.classifier import DocScores
from medcode.model.trained.memory import MemoryHit

FEATURES: tuple[str, ...] = (
    "lex_max",
    "lex_qcov",
    "lex_tcov",
    "lex_rank",
    "lex_n",
    "lexicon_n",
    "pair_max",
    "history_max",
    "dense_max",
    "dense_rank",
    "dense_n",
    "n_support",
    "clause_only",
    "n_absent",
    "historical_frac",
    "possible_frac",
    "first_position",
    "section",
    "mention_type",
    "linear_score",
    "linear_rank",
    "knn_tfidf",
    "knn_tfidf_rank",
    "knn_dense",
    "knn_dense_rank",
    "memory_max",
    "memory_sentences",
    "memory_total",
    "memory_rank",
    "sentence_sim",
    "document_sim",
    "train_count",
    "prior",
    "billable",
    "depth",
    "chapter",
    "unspecified",
    "code_length",
    "in_catalog",
    "walk_max",
    "walk_depth",
    "related_max",
    "related_seed",
    "related_relation",
)
"""Packs trained before a feature was added keep their own list (`pack_columns`): append, never reorder."""
CATEGORICAL: tuple[str, ...] = ("section", "mention_type", "chapter")

_SECTION_ID = {name: i for i, name in enumerate(SECTIONS)}
_TYPE_ID = {name: i for i, name in enumerate(MENTION_TYPES)}
_CHAPTERS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass
class DocContext:
    """What is computed once per encounter and task, shared by all its candidates."""

    scores: DocScores
    linear_rank: dict[str, int]
    document_vector: np.ndarray | None
    memory: Mapping[str, MemoryHit]
    knn_tfidf_rank: dict[str, int]
    knn_dense_rank: dict[str, int]
    memory_rank: dict[str, int]


def doc_context(
    scores: DocScores, document_vector: np.ndarray | None, memory: Mapping[str, MemoryHit] | None = None
) -> DocContext:
    memory = memory or {}
    return DocContext(
        scores,
        _ranks(scores.linear),
        document_vector,
        memory,
        _ranks(scores.knn_tfidf),
        _ranks(scores.knn_dense),
        _ranks({c: h.score for c, h in memory.items()}),
    )


def _ranks(table: Mapping[str, float]) -> dict[str, int]:
    ranked = sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))
    return {c: i for i, (c, _) in enumerate(ranked)}


def chapter_id(info: CodeInfo | None, code: str) -> int:
    if info is not None and info.system == "ICD-10-CM":
        try:
            return int(info.chapter)
        except ValueError:
            return 0
    ch = code[:1].upper()
    return 30 + _CHAPTERS.index(ch) if ch in _CHAPTERS else 0


def pack_columns(names: Sequence[str]) -> list[int] | None:
    """Columns of FEATURES that a pack's ranker was trained on (None: all of them, in order); a pack naming
    a feature this medcode does not compute raises ValueError."""
    if list(names) == list(FEATURES):
        return None
    unknown = [n for n in names if n not in FEATURES]
    if unknown or not names:
        raise ValueError(f"unknown ranker features: {', '.join(unknown)}")
    return [FEATURES.index(n) for n in names]


def candidate_features(
    view: EncounterView,
    cand: Candidate,
    info: CodeInfo | None,
    ctx: DocContext,
    train_count: Mapping[str, int],
    n_train_docs: int,
    similarity: tuple[float, float] = (-1.0, -1.0),
) -> list[float]:
    """The ranker's features of one candidate; `similarity` is (best sentence, document) cosine with the
    code's name vector, from `code_similarities` (-1 without a vector)."""

    # one pass over the hits: per source, the best hit (by score, then query coverage), the best rank and
    # the mentions behind it
    best_hit: dict[str, Hit] = {}
    best_rank: dict[str, int] = {}
    by_source: dict[str, set[int]] = {}
    for h in cand.present:
        current = best_hit.get(h.source)
        if current is None or (h.score, h.query_coverage) > (current.score, current.query_coverage):
            best_hit[h.source] = h
        best_rank[h.source] = min(best_rank.get(h.source, h.rank), h.rank)
        by_source.setdefault(h.source, set()).add(h.mention)

    def best(source: str) -> tuple[float, float, float, int]:
        h = best_hit.get(source)
        if h is None:
            return 0.0, 0.0, 0.0, 99
        return h.score, h.query_coverage, h.term_coverage, best_rank[source]

    lex, lex_q, lex_t, lex_rank = best("lexical")
    walk, _, walk_depth, _ = best("index_walk")
    related, _, related_seed, related_relation = best("related")
    dense, _, _, dense_rank = best("dense")
    mentions = {h.mention for h in cand.present}
    support = [view.mentions[i] for i in mentions]
    hist = sum(1 for m in support if m.assertion.historical)
    poss = sum(1 for m in support if m.assertion.possible)
    top = cand.best()
    section = mtype = -1
    first = 1.0
    if top is not None:
        m = view.mentions[top.mention]
        section = _SECTION_ID.get(m.section, len(SECTIONS))
        mtype = _TYPE_ID.get(m.type, len(MENTION_TYPES))
        lengths = view.doc_lengths
        first = min(
            view.mentions[i].start / max(lengths.get(view.mentions[i].document_id, 1), 1) for i in mentions
        )
    sentence_sim, document_sim = similarity
    code = cand.code
    count = train_count.get(code, 0)
    mem = ctx.memory.get(code)
    return [
        lex,
        lex_q,
        lex_t,
        float(lex_rank),
        float(len(by_source.get("lexical", ()))),
        float(len(by_source.get("lexicon", ()))),
        best_hit["pair"].score if "pair" in best_hit else 0.0,
        best_hit["history"].score if "history" in best_hit else 0.0,
        dense,
        float(dense_rank),
        float(len(by_source.get("dense", ()))),
        float(len(mentions)),
        float(bool(mentions) and all(view.is_clause(i) for i in mentions)),
        float(len({h.mention for h in cand.absent})),
        hist / len(support) if support else 0.0,
        poss / len(support) if support else 0.0,
        first,
        float(section),
        float(mtype),
        ctx.scores.linear.get(code, math.nan),
        float(ctx.linear_rank.get(code, 999)),
        ctx.scores.knn_tfidf.get(code, 0.0),
        float(ctx.knn_tfidf_rank.get(code, 999)),
        ctx.scores.knn_dense.get(code, 0.0),
        float(ctx.knn_dense_rank.get(code, 999)),
        mem.score if mem else 0.0,
        float(mem.sentences) if mem else 0.0,
        mem.total if mem else 0.0,
        float(ctx.memory_rank.get(code, 999)),
        sentence_sim,
        document_sim,
        math.log1p(count),
        count / max(n_train_docs, 1),
        float(info.billable) if info else -1.0,
        float(info.depth) if info else -1.0,
        float(chapter_id(info, code)),
        float(info.unspecified) if info else -1.0,
        float(len(code.replace(".", ""))),
        float(info is not None),
        walk,
        walk_depth if walk else -1.0,
        related,
        related_seed if "related" in best_hit else -1.0,
        float(related_relation) if "related" in best_hit else -1.0,
    ]


def code_similarities(
    view: EncounterView, ctx: DocContext, vectors: Sequence[np.ndarray | None]
) -> list[tuple[float, float]]:
    """(best sentence, document) cosine of each code vector with the note, all codes in one product;
    (-1, -1) for a code without a vector, -1 where the note has no sentence or document vector."""
    out = [(-1.0, -1.0)] * len(vectors)
    have = [i for i, v in enumerate(vectors) if v is not None]
    if not have:
        return out
    matrix = np.stack([vectors[i] for i in have])  # type: ignore[misc]
    n = len(have)
    sentence = np.full(n, -1.0)
    if view.sentence_vectors is not None and len(view.sentence_vectors):
        sentence = steady((view.sentence_vectors @ matrix.T).max(axis=0))
    document = steady(matrix @ ctx.document_vector) if ctx.document_vector is not None else np.full(n, -1.0)
    for k, i in enumerate(have):
        out[i] = (float(sentence[k]), float(document[k]))
    return out
