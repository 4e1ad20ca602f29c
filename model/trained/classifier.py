"""Document-level code scores learned from coded notes: a linear multi-label model over TF-IDF features
(ridge regression, solved in its dual form for all codes at once), and two nearest-neighbour votes
(TF-IDF and sentence-encoder document vectors).

`DocumentClassifier.fit(texts, labels, vectors)` then `.scores(texts, vectors)` gives, per document, a
dict code -> score for each of the three scorers (`DocScores.linear`, `.knn_tfidf`, `.knn_dense`).

The dual form needs only the training documents' TF-IDF rows and one coefficient per (training document,
code): the document-similarity matrix the kNN votes use already gives the linear scores, and the pack
stays small whatever the vocabulary.

A pack stores the fitted TF-IDF as arrays too (`model.trained.numeric.TfidfSims`): a classifier loaded
from them scores notes without scikit-learn, with the same similarities bitwise.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medcode.model.candidates.dense import steady
from medcode.model.trained.numeric import TFIDF_KEYS, TfidfSims

log = logging.getLogger(__name__)


@dataclass
class ClassifierConfig:
    """The document classifier: a kernel ridge model over TF-IDF and similarity-weighted kNN votes."""

    min_count: int = 2
    """Codes with fewer training documents get no linear model (the kNN votes still cover them)."""
    ridge: float = 1.0
    """Ridge penalty of the linear model (larger: smoother scores)."""
    max_features: int = 60_000
    """Vocabulary size of the TF-IDF (word 1- and 2-grams, most frequent first)."""
    knn_k: int = 15
    """Nearest training documents that vote for their codes."""
    knn_power: float = 3.0
    """A neighbour's vote is its cosine similarity to this power (larger: the nearest count more)."""
    keep: int = 150
    """Codes per document the linear model keeps, best first (the candidates proposed come from these and
    from every code of the kNN neighbours)."""


@dataclass
class DocScores:
    linear: dict[str, float]
    knn_tfidf: dict[str, float]
    knn_dense: dict[str, float]

    def codes(self, top_n: int) -> list[str]:
        out: list[str] = []
        for table in (self.linear, self.knn_tfidf, self.knn_dense):
            out.extend(c for c, _ in sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n])
        return list(dict.fromkeys(out))


class DocumentClassifier:
    """Multi-label document scorer for one task (diagnosis or procedure)."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        self.vectorizer: Any = None
        self.train_tfidf: Any = None
        self.train_vectors: np.ndarray | None = None
        self.train_labels: list[list[str]] = []
        self.linear_codes: list[str] = []
        self.dual: np.ndarray | None = None
        """(training documents x linear codes) dual coefficients: score = sim(doc, train) @ dual."""
        self.bias: np.ndarray | None = None
        self.tfidf: TfidfSims | None = None
        """The TF-IDF as numpy arrays (a loaded pack that stores them); then `vectorizer` is None."""

    def fit(
        self, texts: Sequence[str], labels: Sequence[Sequence[str]], vectors: np.ndarray | None
    ) -> DocumentClassifier:
        from sklearn.feature_extraction.text import TfidfVectorizer

        cfg = self.config
        self.vectorizer = TfidfVectorizer(
            ngram_range=(1, 2),
            min_df=2,
            max_df=0.9,
            sublinear_tf=True,
            max_features=cfg.max_features,
            strip_accents="unicode",
            dtype=np.float32,
        )
        x = self.vectorizer.fit_transform(texts).tocsr()
        self.train_tfidf = x
        self.train_vectors = None if vectors is None else np.asarray(vectors, dtype=np.float32)
        self.train_labels = [sorted(set(lab)) for lab in labels]
        counts = Counter(c for lab in self.train_labels for c in lab)
        self.linear_codes = sorted(c for c, n in counts.items() if n >= cfg.min_count)
        index = {c: j for j, c in enumerate(self.linear_codes)}
        y = np.zeros((len(texts), len(self.linear_codes)), dtype=np.float64)
        for i, lab in enumerate(self.train_labels):
            for code in lab:
                if code in index:
                    y[i, index[code]] = 1.0
        self.bias = y.mean(axis=0).astype(np.float32)
        kernel = np.asarray((x @ x.T).todense(), dtype=np.float64)
        kernel[np.diag_indices_from(kernel)] += cfg.ridge
        self.dual = np.linalg.solve(kernel, y - self.bias[None, :]).astype(np.float32)
        log.info("document classifier: %d documents, %d linear codes", len(texts), len(self.linear_codes))
        return self

    def scores(self, texts: Sequence[str], vectors: np.ndarray | None) -> list[DocScores]:
        if (self.vectorizer is None and self.tfidf is None) or self.dual is None or self.bias is None:
            raise RuntimeError("the document classifier is not fitted")
        cfg = self.config
        if self.tfidf is not None:
            sims_tfidf = np.asarray(self.tfidf.similarities(texts), dtype=np.float32)
        else:
            x = self.vectorizer.transform(texts).tocsr()
            sims_tfidf = np.asarray((x @ self.train_tfidf.T).todense(), dtype=np.float32)
        linear = sims_tfidf @ self.dual + self.bias[None, :] if len(self.linear_codes) else None
        sims_dense = (
            steady(np.asarray(vectors, dtype=np.float32) @ self.train_vectors.T)
            if vectors is not None and self.train_vectors is not None
            else None
        )
        out: list[DocScores] = []
        for i in range(len(texts)):
            table: dict[str, float] = {}
            if linear is not None:
                row = linear[i]
                top = np.argsort(-row, kind="stable")[: cfg.keep]
                table = {self.linear_codes[j]: float(row[j]) for j in top}
            out.append(
                DocScores(
                    linear=table,
                    knn_tfidf=self._knn(sims_tfidf[i]),
                    knn_dense=self._knn(sims_dense[i]) if sims_dense is not None else {},
                )
            )
        return out

    def _knn(self, sims: np.ndarray) -> dict[str, float]:
        cfg = self.config
        if sims.size == 0:
            return {}
        k = min(cfg.knn_k, sims.size)
        top = np.argpartition(-sims, k - 1)[:k]
        weights = np.clip(sims[top], 0.0, None) ** cfg.knn_power
        total = float(weights.sum())
        if total <= 0:
            return {}
        votes: dict[str, float] = {}
        for j, w in zip(top, weights, strict=True):
            for code in self.train_labels[j]:
                votes[code] = votes.get(code, 0.0) + float(w)
        return {c: v / total for c, v in votes.items()}

    # persistence ---------------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        """(arrays, objects, json) to store in a pack: the TF-IDF both as arrays (read without
        scikit-learn) and, when this classifier was fitted or loaded with them, as joblib objects."""
        assert self.dual is not None and self.bias is not None
        arrays = {"dual": self.dual, "bias": self.bias}
        if self.train_vectors is not None:
            arrays["train_vectors"] = self.train_vectors
        objects: dict[str, Any] = {}
        if self.vectorizer is not None:
            objects = {"vectorizer": self.vectorizer, "train_tfidf": self.train_tfidf}
            arrays.update(TfidfSims.arrays_of(self.vectorizer, self.train_tfidf))
        elif self.tfidf is not None:
            arrays.update(self.tfidf.arrays)
        meta = {
            "linear_codes": self.linear_codes,
            "train_labels": self.train_labels,
            "config": asdict(self.config),
        }
        return arrays, objects, meta

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], objects: dict[str, Any], meta: dict[str, Any]
    ) -> DocumentClassifier:
        """A classifier from `state()`'s parts: TF-IDF arrays when `arrays` holds them (then `objects` may
        be empty), else the joblib objects of an older pack."""
        clf = cls(ClassifierConfig(**meta.get("config", {})))
        if all(k in arrays for k in TFIDF_KEYS):
            clf.tfidf = TfidfSims({k: arrays[k] for k in TFIDF_KEYS})
        else:
            clf.vectorizer = objects["vectorizer"]
            clf.train_tfidf = objects["train_tfidf"]
        clf.dual = arrays["dual"]
        clf.bias = arrays["bias"]
        clf.train_vectors = arrays.get("train_vectors")
        clf.linear_codes = list(meta["linear_codes"])
        clf.train_labels = [list(lab) for lab in meta["train_labels"]]
        return clf
