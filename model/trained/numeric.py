"""Fitted scikit-learn objects of the default model as plain arrays, evaluated in numpy.

A pack stores its ranker (`HistGradientBoostingClassifier`) and its document classifiers' TF-IDF
(`TfidfVectorizer` and the training documents' TF-IDF rows) as arrays beside the joblib objects, and a
loaded pack runs these numpy versions: `medcode suggest` then never imports scikit-learn, pandas or
scipy (about 1.8 s of CPU). They compute what scikit-learn computes, in the same order of operations:
`TreeRanker.predict_proba` equals `predict_proba` bitwise, `TfidfSims.similarities` equals
`(vectorizer.transform(texts) @ train_tfidf.T)` bitwise (`tests/model/test_numeric.py`). Packs saved
before keep their joblib objects and are read through scikit-learn.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

RANKER_PREFIX = "ranker_"
"""Key prefix of a task's ranker arrays in the pack's arrays.npz (`TASK.ranker_tree_nodes`, ...)."""
TFIDF_KEYS = ("tfidf_terms", "tfidf_idf", "tfidf_meta", "tfidf_indptr", "tfidf_indices", "tfidf_data")
"""The arrays of `TfidfSims` in a classifier's state."""

_MISSING_LEFT, _LEAF, _CATEGORICAL = 1, 2, 4


class TreeRanker:
    """The trees of a binary `HistGradientBoostingClassifier` as flat node arrays."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.arrays = dict(arrays)
        """The arrays it was built from (stored again when its pack is saved again)."""
        nodes = np.asarray(arrays["tree_nodes"], dtype=np.int64)
        # columns: feature, left, right, bitset row (absolute node indices; a leaf points at itself)
        self.feature, self.left, self.right, self.bitset = (np.ascontiguousarray(c) for c in nodes.T)
        self.values = np.asarray(arrays["tree_values"], dtype=np.float64)
        self.thresholds = np.asarray(arrays["tree_thresholds"], dtype=np.float64)
        flags = np.asarray(arrays["tree_flags"], dtype=np.uint8)
        self.missing_left = (flags & _MISSING_LEFT) > 0
        self.categorical = (flags & _CATEGORICAL) > 0
        self.any_categorical = bool(self.categorical.any())
        self.inner = self.left != np.arange(len(self.left))
        """False at a leaf (which points at itself)."""
        meta = np.asarray(arrays["meta"], dtype=np.float64)
        # meta: baseline, depth, trees, features, categorical columns..., then the tree roots
        self.baseline = float(meta[0])
        self.depth = int(meta[1])
        n_trees, self.n_features = int(meta[2]), int(meta[3])
        n_cat = int(meta[4])
        self.cat_columns = meta[5 : 5 + n_cat].astype(np.int64)
        self.roots = meta[5 + n_cat : 5 + n_cat + n_trees].astype(np.int64)
        self.categories = [np.asarray(arrays[f"categories_{i}"], dtype=np.float32) for i in range(n_cat)]
        self.left_bitsets = np.asarray(arrays["left_bitsets"], dtype=np.uint32)
        self.known_bitsets = np.asarray(arrays["known_bitsets"], dtype=np.uint32)
        self.known_row = np.asarray(arrays["known_row"], dtype=np.int64)
        self.source = np.asarray(arrays["source"], dtype=np.int64)

    # conversion --------------------------------------------------------------------------------------
    @staticmethod
    def arrays_of(model: Any) -> dict[str, np.ndarray]:
        """The arrays of a fitted binary HistGradientBoostingClassifier (ValueError for other models)."""
        if type(model).__name__ != "HistGradientBoostingClassifier" or len(model.classes_) != 2:
            raise ValueError(f"not a binary HistGradientBoostingClassifier: {type(model).__name__}")
        if model.n_trees_per_iteration_ != 1:
            raise ValueError("one tree per iteration expected")
        n_features = int(model.n_features_in_)
        # the column each predictor feature reads: with categorical features, scikit-learn's preprocessor
        # puts the (ordinal-encoded) categorical columns first, then the numerical ones, in input order
        if model._preprocessor is not None:
            mask = np.asarray(model.is_categorical_, dtype=bool)
            cat_columns = np.flatnonzero(mask)
            source = np.r_[cat_columns, np.flatnonzero(~mask)]
            categories = list(model._preprocessor.named_transformers_["encoder"].categories_)
        else:
            cat_columns = np.zeros(0, dtype=np.int64)
            source = np.arange(n_features)
            categories = []
        known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
        rows: list[np.ndarray] = []
        values: list[np.ndarray] = []
        thresholds: list[np.ndarray] = []
        flags: list[np.ndarray] = []
        left_bitsets: list[np.ndarray] = []
        roots: list[int] = []
        offset = bitset_offset = 0
        depth = 0
        for (predictor,) in model._predictors:
            nodes = predictor.nodes
            n = len(nodes)
            leaf = nodes["is_leaf"].astype(bool)
            own = np.arange(n) + offset
            left = np.where(leaf, own, nodes["left"].astype(np.int64) + offset)
            right = np.where(leaf, own, nodes["right"].astype(np.int64) + offset)
            feature = nodes["feature_idx"].astype(np.int64)
            rows.append(
                np.stack([feature, left, right, nodes["bitset_idx"].astype(np.int64) + bitset_offset], 1)
            )
            values.append(nodes["value"].astype(np.float64))
            thresholds.append(nodes["num_threshold"].astype(np.float64))
            flags.append(
                (nodes["missing_go_to_left"] > 0) * _MISSING_LEFT
                + leaf * _LEAF
                + (nodes["is_categorical"] > 0) * _CATEGORICAL
            )
            left_bitsets.append(np.asarray(predictor.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8))
            roots.append(offset)
            offset += n
            bitset_offset += len(left_bitsets[-1])
            depth = max(depth, int(nodes["depth"].max()))
        meta = np.r_[
            float(np.asarray(model._baseline_prediction).ravel()[0]),
            depth,
            len(roots),
            n_features,
            len(cat_columns),
            cat_columns,
            roots,
        ]
        out = {
            "tree_nodes": np.concatenate(rows),
            "tree_values": np.concatenate(values),
            "tree_thresholds": np.concatenate(thresholds),
            "tree_flags": np.concatenate(flags).astype(np.uint8),
            "meta": meta.astype(np.float64),
            "left_bitsets": np.concatenate(left_bitsets) if left_bitsets else np.zeros((0, 8), np.uint32),
            "known_bitsets": np.asarray(known, dtype=np.uint32).reshape(-1, 8),
            # predictor feature -> its row of known categories; the predictor reads column source[f]
            "known_row": np.asarray(f_idx_map, dtype=np.int64),
            "source": source.astype(np.int64),
        }
        for i, cats in enumerate(categories):
            out[f"categories_{i}"] = np.asarray(cats, dtype=np.float32)
        return out

    @classmethod
    def from_model(cls, model: Any) -> TreeRanker:
        return cls(cls.arrays_of(model))

    # evaluation --------------------------------------------------------------------------------------
    def _columns(self, x: np.ndarray, source: np.ndarray) -> np.ndarray:
        """The predictor's input: categorical columns ordinal-encoded (unknown: NaN), as float64."""
        x = np.asarray(x)
        out = x[:, source].astype(np.float64)
        for i, (column, cats) in enumerate(zip(self.cat_columns, self.categories, strict=True)):
            raw = x[:, column].astype(np.float32)
            pos = np.searchsorted(cats, raw)
            found = (pos < len(cats)) & (cats[np.minimum(pos, len(cats) - 1)] == raw)
            out[:, i] = np.where(found, pos, np.nan)
        return out

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Sum of the leaf values (plus the baseline) per row, accumulated tree after tree in float64.

        Every (row, tree) pair walks down one level per step; pairs that reached their leaf drop out, so
        the work follows the paths' real lengths rather than the deepest tree's."""
        data = self._columns(x, self.source)
        n, n_trees = len(data), len(self.roots)
        values = data.ravel()
        node = np.tile(self.roots, n)  # pair i: row i // n_trees, tree i % n_trees
        start = np.repeat(np.arange(n) * data.shape[1], n_trees)  # where the pair's row begins in `values`
        active = np.flatnonzero(self.inner[node])
        while active.size:
            at = node[active]
            feature = self.feature[at]
            value = values[start[active] + feature]
            go_left = value <= self.thresholds[at]
            missing = np.isnan(value)
            if missing.any():
                gone = np.flatnonzero(missing)
                go_left[gone] = self.missing_left[at[gone]]
            if self.any_categorical:  # categorical splits are few: their rule runs on their pairs only
                categorical = np.flatnonzero(self.categorical[at] & ~missing)
                if categorical.size:
                    go_left[categorical] = self._categorical_left(
                        at[categorical], feature[categorical], value[categorical]
                    )
            at = np.where(go_left, self.left[at], self.right[at])
            node[active] = at
            active = active[self.inner[at]]
        leaves = self.values[node].reshape(n, n_trees)
        total = np.full(n, self.baseline)
        for t in range(n_trees):
            total += leaves[:, t]
        return total

    def _categorical_left(self, node: np.ndarray, feature: np.ndarray, value: np.ndarray) -> np.ndarray:
        """scikit-learn's rule for a categorical split: a category in the node's left set goes left, a
        known category right, a negative or unknown one where missing values go."""
        safe = np.where(np.isnan(value) | (value < 0), 0, value).astype(np.int64) & 255
        word, bit = safe // 32, (safe % 32).astype(np.uint32)
        bitset_rows = np.clip(self.bitset[node], 0, max(len(self.left_bitsets) - 1, 0))
        in_left = (
            (self.left_bitsets[bitset_rows, word] >> bit) & 1 > 0
            if len(self.left_bitsets)
            else np.zeros(node.shape, bool)
        )
        known_rows = self.known_row[feature]
        in_known = (
            (self.known_bitsets[known_rows, word] >> bit) & 1 > 0
            if len(self.known_bitsets)
            else np.zeros(node.shape, bool)
        )
        fallback = self.missing_left[node]
        return np.where(value < 0, fallback, np.where(in_left, True, np.where(in_known, False, fallback)))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raw = self.raw(x)
        # scikit-learn's logistic is scipy's expit, 1 / (1 + exp(-x)) with the C library's exp; numpy's own
        # vectorised exp can differ from it in the last bit on some CPUs, so the C library's is used here too
        positive = np.array([1.0 / (1.0 + _c_exp(-v)) for v in raw.tolist()], dtype=np.float64)
        return np.stack([1.0 - positive, positive], axis=1)


class TfidfSims:
    """A fitted word `TfidfVectorizer` (vocabulary, idf, options) and the training documents' TF-IDF rows,
    giving the cosine similarities of new texts with the training documents."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.arrays = {k: np.asarray(arrays[k]) for k in TFIDF_KEYS}
        """The arrays it was built from (stored again when its pack is saved again)."""
        terms = bytes(np.asarray(arrays["tfidf_terms"], dtype=np.uint8)).decode("utf-8")
        self.vocabulary = {t: i for i, t in enumerate(terms.split("\n"))} if terms else {}
        self.idf = np.asarray(arrays["tfidf_idf"])
        meta = bytes(np.asarray(arrays["tfidf_meta"], dtype=np.uint8)).decode("utf-8").split("\n")
        self.token_pattern = re.compile(meta[0])
        self.lowercase = meta[1] == "1"
        self.strip_accents = meta[2] == "1"
        self.sublinear_tf = meta[3] == "1"
        self.ngram_range = (int(meta[4]), int(meta[5]))
        self.dtype = np.dtype(meta[6])
        self.n_docs = int(meta[7])
        # the training rows by term (the transpose of the training matrix, CSR): term -> (documents, values)
        self.indptr = np.asarray(arrays["tfidf_indptr"], dtype=np.int64)
        self.indices = np.asarray(arrays["tfidf_indices"], dtype=np.int64)
        self.data = np.asarray(arrays["tfidf_data"])

    @staticmethod
    def arrays_of(vectorizer: Any, train_tfidf: Any) -> dict[str, np.ndarray]:
        """The arrays of a fitted TfidfVectorizer (word n-grams, l2 norm, no stop words, no custom
        callables) and its training matrix; ValueError for anything else."""
        params = vectorizer.get_params()
        unsupported = (
            params["analyzer"] != "word"
            or params["norm"] != "l2"
            or not params["use_idf"]
            or params["stop_words"] is not None
            or params["tokenizer"] is not None
            or params["preprocessor"] is not None
            or params["strip_accents"] not in (None, "unicode")
            or params["binary"]
            or params["input"] != "content"
        )
        if unsupported:
            raise ValueError("this TfidfVectorizer's options have no numpy version")
        vocab = vectorizer.vocabulary_
        terms = [""] * len(vocab)
        for term, j in vocab.items():
            terms[j] = term
        if any("\n" in t for t in terms):
            raise ValueError("a vocabulary term holds a newline")
        meta = "\n".join(
            [
                params["token_pattern"],
                "1" if params["lowercase"] else "0",
                "1" if params["strip_accents"] == "unicode" else "0",
                "1" if params["sublinear_tf"] else "0",
                str(params["ngram_range"][0]),
                str(params["ngram_range"][1]),
                np.dtype(params["dtype"]).name,
                str(train_tfidf.shape[0]),
            ]
        )
        by_term = train_tfidf.T.tocsr()  # as scipy's product `x @ train_tfidf.T` reads it
        by_term.sort_indices()
        return {
            "tfidf_terms": np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8),
            "tfidf_idf": np.asarray(vectorizer.idf_),
            "tfidf_meta": np.frombuffer(meta.encode("utf-8"), dtype=np.uint8),
            "tfidf_indptr": np.asarray(by_term.indptr, dtype=np.int64),
            "tfidf_indices": np.asarray(by_term.indices, dtype=np.int64),
            "tfidf_data": np.asarray(by_term.data),
        }

    def _analyze(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.strip_accents:
            text = _strip_accents(text)
        words = self.token_pattern.findall(text)
        low, high = self.ngram_range
        out = list(words) if low == 1 else []
        for n in range(max(low, 2), min(high, len(words)) + 1):
            out.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        return out

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(term columns ascending, TF-IDF values) of one text: what `vectorizer.transform` gives."""
        counts = Counter(j for j in (self.vocabulary.get(t) for t in self._analyze(text)) if j is not None)
        columns = np.array(sorted(counts), dtype=np.int64)
        data = np.array([counts[j] for j in columns], dtype=self.dtype)
        if self.sublinear_tf:
            np.log(data, data)
            data += 1.0
        data *= self.idf[columns]
        total = float(np.cumsum((data * data).astype(np.float64))[-1]) if len(data) else 0.0
        if total != 0.0:  # scikit-learn's row normalisation: sum of float squares in double, one by one
            data = (data.astype(np.float64) / np.sqrt(total)).astype(data.dtype)
        return columns, data

    def similarities(self, texts: Sequence[str]) -> np.ndarray:
        """(texts x training documents) TF-IDF dot products, accumulated term by term as scipy does."""
        out = np.zeros((len(texts), self.n_docs), dtype=np.result_type(self.dtype, self.data.dtype))
        for i, text in enumerate(texts):
            columns, values = self.transform_one(text)
            starts, ends = self.indptr[columns], self.indptr[columns + 1]
            lengths = ends - starts
            if not lengths.sum():
                continue
            take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
            products = np.repeat(values, lengths) * self.data[take]
            np.add.at(out[i], self.indices[take], products)
        return out


def _strip_accents(text: str) -> str:
    """scikit-learn's `strip_accents_unicode`: NFKD, combining marks dropped (ASCII text as it is)."""
    if text.isascii():
        return text
    normalized = unicodedata.normalize("NFKD", text)
    return "".join(c for c in normalized if not unicodedata.combining(c))


def ranker_arrays(ranker: Any) -> dict[str, np.ndarray]:
    """The arrays a pack stores for a task's ranker, keys prefixed with RANKER_PREFIX; empty for a model
    without a numpy version (stored as a joblib object only)."""
    if isinstance(ranker, TreeRanker):
        arrays = ranker.arrays
    else:
        try:
            arrays = TreeRanker.arrays_of(ranker)
        except (ValueError, AttributeError):
            return {}
    return {f"{RANKER_PREFIX}{k}": v for k, v in arrays.items()}


def pop_ranker(arrays: dict[str, np.ndarray]) -> TreeRanker | None:
    """The ranker stored in a task's arrays (its keys removed from `arrays`); None for an older pack."""
    own = {k[len(RANKER_PREFIX) :]: arrays.pop(k) for k in list(arrays) if k.startswith(RANKER_PREFIX)}
    return TreeRanker(own) if own else None


def _c_exp(x: float) -> float:
    """The C library's exp (what scipy's expit calls), inf past float64's range as C returns it."""
    return math.exp(x) if x < 709.78 else math.inf
