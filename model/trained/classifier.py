"""Document-level code scores learned from coded notes: a TF-IDF one-vs-rest logistic regression over the
codes seen often enough, and two nearest-neighbour votes (TF-IDF and sentence-encoder document vectors).

`DocumentClassifier.fit(texts, labels, vectors)` then `.scores(texts, vectors)` gives, per document, a
dict code -> (lr probability, kNN TF-IDF vote, kNN dense vote) for the codes any of the three proposes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class ClassifierConfig:
    min_count: int = 2
    """Codes with fewer training documents get no logistic regression (the kNN votes still cover them)."""
    C: float = 8.0
    max_features: int = 60_000
    knn_k: int = 15
    knn_power: float = 3.0
    top_n: int = 40
    """Codes per document each scorer proposes as candidates."""


@dataclass
class DocScores:
    lr: dict[str, float]
    knn_tfidf: dict[str, float]
    knn_dense: dict[str, float]

    def codes(self, top_n: int) -> list[str]:
        out: list[str] = []
        for table in (self.lr, self.knn_tfidf, self.knn_dense):
            out.extend(c for c, _ in sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n])
        return list(dict.fromkeys(out))


class DocumentClassifier:
    """Multi-label document classifier for one task (diagnosis or procedure)."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        self.vectorizer: Any = None
        self.lr_codes: list[str] = []
        self.lr_coef: np.ndarray | None = None
        self.lr_intercept: np.ndarray | None = None
        self.train_tfidf: Any = None
        self.train_vectors: np.ndarray | None = None
        self.train_labels: list[list[str]] = []

    def fit(
        self, texts: Sequence[str], labels: Sequence[Sequence[str]], vectors: np.ndarray | None
    ) -> DocumentClassifier:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

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
        x = self.vectorizer.fit_transform(texts)
        self.train_tfidf = x
        self.train_vectors = None if vectors is None else np.asarray(vectors, dtype=np.float32)
        self.train_labels = [sorted(set(lab)) for lab in labels]
        counts = Counter(c for lab in self.train_labels for c in lab)
        self.lr_codes = sorted(c for c, n in counts.items() if n >= cfg.min_count)
        coefs, intercepts = [], []
        for code in self.lr_codes:
            y = np.fromiter((code in lab for lab in self.train_labels), dtype=bool, count=len(texts))
            model = LogisticRegression(C=cfg.C, solver="liblinear", class_weight=None, max_iter=200)
            model.fit(x, y)
            coefs.append(model.coef_[0].astype(np.float32))
            intercepts.append(float(model.intercept_[0]))
        n_features = x.shape[1]
        self.lr_coef = np.vstack(coefs) if coefs else np.zeros((0, n_features), dtype=np.float32)
        self.lr_intercept = np.asarray(intercepts, dtype=np.float32)
        log.info("document classifier: %d documents, %d LR codes", len(texts), len(self.lr_codes))
        return self

    def scores(self, texts: Sequence[str], vectors: np.ndarray | None) -> list[DocScores]:
        if self.vectorizer is None or self.lr_coef is None or self.lr_intercept is None:
            raise RuntimeError("the document classifier is not fitted")
        cfg = self.config
        x = self.vectorizer.transform(texts).tocsr()
        out: list[DocScores] = []
        logits = self._logits(x) if len(self.lr_codes) else None
        sims_tfidf = np.asarray((x @ self.train_tfidf.T).todense())
        sims_dense = (
            np.asarray(vectors, dtype=np.float32) @ self.train_vectors.T
            if vectors is not None and self.train_vectors is not None
            else None
        )
        for i in range(len(texts)):
            lr: dict[str, float] = {}
            if logits is not None:
                probs = 1.0 / (1.0 + np.exp(-logits[i]))
                top = np.argsort(-probs)[: max(cfg.top_n * 2, 50)]
                lr = {self.lr_codes[j]: float(probs[j]) for j in top}
            out.append(
                DocScores(
                    lr=lr,
                    knn_tfidf=self._knn(sims_tfidf[i]),
                    knn_dense=self._knn(sims_dense[i]) if sims_dense is not None else {},
                )
            )
        return out

    def _logits(self, x: Any) -> np.ndarray:
        """x @ coef.T + intercept, gathering only the columns each (sparse) row uses."""
        assert self.lr_coef is not None and self.lr_intercept is not None
        coef_t = getattr(self, "_coef_t", None)
        if coef_t is None:
            coef_t = self._coef_t = np.ascontiguousarray(self.lr_coef.T)
        out = np.empty((x.shape[0], len(self.lr_codes)), dtype=np.float32)
        for i in range(x.shape[0]):
            lo, hi = x.indptr[i], x.indptr[i + 1]
            out[i] = x.data[lo:hi].astype(np.float32) @ coef_t[x.indices[lo:hi]] + self.lr_intercept
        return out

    def lr_probability(self, texts: Sequence[str], codes: Sequence[str]) -> np.ndarray:
        """LR probability of given codes for each text (0 for codes without a model)."""
        assert self.vectorizer is not None and self.lr_coef is not None and self.lr_intercept is not None
        index = {c: i for i, c in enumerate(self.lr_codes)}
        x = self.vectorizer.transform(texts)
        out = np.zeros((len(texts), len(codes)), dtype=np.float32)
        cols = [index.get(c, -1) for c in codes]
        have = [j for j, c in enumerate(cols) if c >= 0]
        if have:
            w = self.lr_coef[[cols[j] for j in have]]
            logits = np.asarray(x @ w.T) + self.lr_intercept[[cols[j] for j in have]][None, :]
            out[:, have] = 1.0 / (1.0 + np.exp(-logits))
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
        """(arrays, objects, json) to store in a pack."""
        assert self.lr_coef is not None and self.lr_intercept is not None
        arrays = {"lr_coef": self.lr_coef, "lr_intercept": self.lr_intercept}
        if self.train_vectors is not None:
            arrays["train_vectors"] = self.train_vectors
        objects = {"vectorizer": self.vectorizer, "train_tfidf": self.train_tfidf}
        meta = {"lr_codes": self.lr_codes, "train_labels": self.train_labels, "config": self.config.__dict__}
        return arrays, objects, meta

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], objects: dict[str, Any], meta: dict[str, Any]
    ) -> DocumentClassifier:
        clf = cls(ClassifierConfig(**meta.get("config", {})))
        clf.vectorizer = objects["vectorizer"]
        clf.train_tfidf = objects["train_tfidf"]
        clf.lr_coef = arrays["lr_coef"]
        clf.lr_intercept = arrays["lr_intercept"]
        clf.train_vectors = arrays.get("train_vectors")
        clf.lr_codes = list(meta["lr_codes"])
        clf.train_labels = [list(lab) for lab in meta["train_labels"]]
        return clf
