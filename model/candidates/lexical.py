"""Lexical retrieval of codes: TF-IDF cosine between a query (a mention) and every name of every code.

Each code name (title, inclusion term, index entry, synonym) is a row of a sparse TF-IDF matrix over
normalised words (`tokens`). A query is scored against all names at once with one sparse product; a
code's score is the best of its names. Besides the cosine, every hit carries how much of the query's
weight the name covers (`query_coverage`) and how much of the name the query covers (`term_coverage`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from model.candidates.tokens import tokens
from model.catalog import Term

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LexicalHit:
    code: str
    score: float
    """Cosine similarity of the query with the code's best-matching name."""
    query_coverage: float
    term_coverage: float
    term: str
    kind: str


class LexicalIndex:
    """TF-IDF index over the names of the codes of one system."""

    def __init__(self, terms: Sequence[Term]) -> None:
        vocab: dict[str, int] = {}
        rows: list[list[int]] = []
        for term in terms:
            rows.append(sorted({vocab.setdefault(t, len(vocab)) for t in tokens(term.text)}))
        self.vocab = vocab
        self.codes = [t.code for t in terms]
        self.texts = [t.text for t in terms]
        self.kinds = [t.kind for t in terms]
        n_terms, n_words = len(rows), max(len(vocab), 1)
        indptr = np.cumsum([0] + [len(r) for r in rows])
        indices = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(indptr[-1]))
        binary = sparse.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n_terms, n_words)
        )
        df = np.asarray(binary.sum(axis=0)).ravel()
        self.idf = (np.log((n_terms + 1) / (df + 1)) + 1.0).astype(np.float32)
        weighted = binary.multiply(self.idf[None, :]).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self._tfidf = sparse.csr_matrix(weighted.multiply(1.0 / norms[:, None]))
        self._tfidf_t = self._tfidf.T.tocsr()
        self._binary = binary
        self._term_mass = np.asarray(weighted.sum(axis=1)).ravel().astype(np.float32)
        self._term_mass[self._term_mass == 0] = 1.0
        self._rows_of: dict[str, list[int]] | None = None
        log.debug("lexical index: %d names, %d words", n_terms, n_words)

    def __len__(self) -> int:
        return len(self.codes)

    def rows_of(self, code: str) -> list[int]:
        if self._rows_of is None:
            rows: dict[str, list[int]] = {}
            for i, c in enumerate(self.codes):
                rows.setdefault(c, []).append(i)
            self._rows_of = rows
        return self._rows_of.get(code, [])

    def score_codes(self, query: str, codes: Sequence[str]) -> dict[str, LexicalHit]:
        """How well `query` matches each of `codes` (best name per code); codes without names are left out."""
        wanted = {c: self.rows_of(c) for c in dict.fromkeys(codes)}
        rows = sorted({r for rs in wanted.values() for r in rs})
        if not rows:
            return {}
        q_tfidf, q_weight, q_mass = self._query_matrix([query])
        cosine = np.asarray((self._tfidf[rows] @ q_tfidf.T).todense()).ravel()
        shared = np.asarray((self._binary[rows] @ q_weight.T).todense()).ravel()
        pos = {r: k for k, r in enumerate(rows)}
        out: dict[str, LexicalHit] = {}
        for code, code_rows in wanted.items():
            if not code_rows:
                continue
            k = max((pos[r] for r in code_rows), key=lambda j: (cosine[j], -j))
            out[code] = self._hit(rows[k], float(cosine[k]), float(shared[k]), float(q_mass[0]))
        return out

    def _hit(self, term_id: int, score: float, shared: float, query_mass: float) -> LexicalHit:
        """A hit on one name; `shared` is the idf mass of the words the query and the name share."""
        return LexicalHit(
            code=self.codes[term_id],
            score=score,
            query_coverage=float(min(1.0, shared / max(query_mass, 1e-9))),
            term_coverage=float(min(1.0, shared / self._term_mass[term_id])),
            term=self.texts[term_id],
            kind=self.kinds[term_id],
        )

    def _query_matrix(
        self, queries: Sequence[str]
    ) -> tuple[sparse.csr_matrix, sparse.csr_matrix, np.ndarray]:
        """(normalised TF-IDF rows, idf-weighted word rows, query mass) of the queries."""
        rows, cols = [], []
        unknown = np.zeros(len(queries), dtype=np.float32)
        for i, q in enumerate(queries):
            words = tokens(q)
            ids = sorted({self.vocab[t] for t in words if t in self.vocab})
            rows.extend([i] * len(ids))
            cols.extend(ids)
            unknown[i] = sum(1 for t in words if t not in self.vocab)
        shape = (len(queries), max(len(self.vocab), 1))
        binary = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
        weighted = binary.multiply(self.idf[None, :]).tocsr()
        # query mass counts unknown words too: a query made of words no code uses matches nothing well
        mass = np.asarray(weighted.sum(axis=1)).ravel() + unknown * float(self.idf.max(initial=1.0))
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel() + 0.0)
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(weighted.multiply(1.0 / norms[:, None])), weighted, mass

    def search(self, queries: Sequence[str], k: int = 10, min_score: float = 0.0) -> list[list[LexicalHit]]:
        """The best `k` codes for every query (a code appears once, with its best-matching name)."""
        if not queries or len(self.codes) == 0:
            return [[] for _ in queries]
        q_tfidf, q_weight, q_mass = self._query_matrix(queries)
        cosine = (q_tfidf @ self._tfidf_t).tocsr()
        out: list[list[LexicalHit]] = []
        for i in range(len(queries)):
            lo, hi = cosine.indptr[i], cosine.indptr[i + 1]
            idx, val = cosine.indices[lo:hi], cosine.data[lo:hi]
            if len(idx) == 0:
                out.append([])
                continue
            take = min(len(idx), k * 8)
            top = np.argpartition(-val, take - 1)[:take] if take < len(idx) else np.arange(len(idx))
            top = top[np.lexsort((idx[top], -val[top]))]
            top = top[val[top] >= min_score]
            terms = idx[top]
            shared = np.asarray((self._binary[terms] @ q_weight[i].T).todense()).ravel()
            hits: list[LexicalHit] = []
            seen: set[str] = set()
            for term_id, score, common in zip(terms, val[top], shared, strict=True):
                code = self.codes[term_id]
                if code in seen:
                    continue
                seen.add(code)
                hits.append(self._hit(int(term_id), float(score), float(common), float(q_mass[i])))
                if len(hits) >= k:
                    break
            out.append(hits)
        return out
