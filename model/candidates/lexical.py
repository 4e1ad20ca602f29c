"""Lexical retrieval of codes: TF-IDF cosine between a query (a mention) and every name of every code.

Each code name (title, inclusion term, index entry, synonym) is a row of a sparse TF-IDF matrix over
normalised words (`tokens`). A query is scored against all names at once with one sparse product; a
code's score is the best of its names. Besides the cosine, every hit carries how much of the query's
weight the name covers (`query_coverage`) and how much of the name the query covers (`term_coverage`).

Not merged with `data.search.CodeSearch` (the coders' code search): this index scores chosen codes for
given queries with the coverages the trained ranker's features are made of, over the names a model pack
carries; the code search ranks whole systems for typed text (bigrams, typo repair, code prefixes). One
index for both would change the trained model's features or the search's ranking; see `data/search.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from medcode.model.candidates.tokens import tokens
from medcode.model.catalog import CodeCatalog, Term, term_columns

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

    def __init__(self, terms: Sequence[Term], words: WordRows | None = None) -> None:
        """Index `terms`; `words` (from `word_rows()` of an index over the same terms, as a pack stores it)
        skips normalising every name again, which is most of the cost of building an index."""
        if words is None:
            words = _word_rows(terms)
        vocab, indptr, indices = words
        if len(indptr) != len(terms) + 1:
            raise ValueError(f"stored word rows are for {len(indptr) - 1} names, not {len(terms)}")
        self.vocab = vocab
        names = term_columns(terms)  # a catalog's own columns: no Term record built
        self.codes = list(names.codes)
        self.texts = list(names.texts)
        self.kinds = list(names.kinds)
        n_terms, n_words = len(terms), max(len(vocab), 1)
        self._indptr, self._indices = indptr, indices
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

    def word_rows(self) -> WordRows:
        """(vocabulary, row pointers, word ids) of the names: what `LexicalIndex(terms, words)` rebuilds
        the index from."""
        return self.vocab, self._indptr, self._indices

    def rows_of(self, code: str) -> list[int]:
        if self._rows_of is None:
            rows: dict[str, list[int]] = {}
            for i, c in enumerate(self.codes):
                rows.setdefault(c, []).append(i)
            self._rows_of = rows
        return self._rows_of.get(code, [])

    def score_codes(self, query: str, codes: Sequence[str]) -> dict[str, LexicalHit]:
        """How well `query` matches each of `codes` (best name per code); codes without names are left out."""
        return self.score_many([(query, codes)])[0]

    def score_many(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[dict[str, LexicalHit]]:
        """`score_codes` for many (query, codes) pairs at once (one sparse pass for all of them)."""
        if not items:
            return []
        q_tfidf, q_weight, q_mass = self._query_matrix([query for query, _ in items])
        wanted = [{c: self.rows_of(c) for c in dict.fromkeys(codes)} for _, codes in items]
        rows = [sorted({r for rs in w.values() for r in rs}) for w in wanted]
        pair_query, pair_term = _pairs(rows)
        cosine = _row_products(self._tfidf, pair_term, q_tfidf, pair_query)
        shared = _row_products(self._binary, pair_term, q_weight, pair_query)
        out: list[dict[str, LexicalHit]] = []
        start = 0
        for i, (codes_rows, own_rows) in enumerate(zip(wanted, rows, strict=True)):
            pos = {r: start + k for k, r in enumerate(own_rows)}
            start += len(own_rows)
            found: dict[str, LexicalHit] = {}
            for code, code_rows in codes_rows.items():
                if not code_rows:
                    continue
                j = max((pos[r] for r in code_rows), key=lambda x: (cosine[x], -x))
                found[code] = self._hit(
                    int(pair_term[j]), float(cosine[j]), float(shared[j]), float(q_mass[i])
                )
            out.append(found)
        return out

    def _hit(self, term_id: int, score: float, shared: float, query_mass: float) -> LexicalHit:
        """A hit on one name; `shared` is the idf mass of the words the query and the name share."""
        # coverages rounded: a full match is exactly 1.0 whatever order the sparse sums ran in
        return LexicalHit(
            code=self.codes[term_id],
            score=score,
            query_coverage=round(min(1.0, shared / max(query_mass, 1e-9)), 4),
            term_coverage=round(min(1.0, shared / float(self._term_mass[term_id])), 4),
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
        # per query, its best names (by cosine, then name order) at or above min_score
        tops: list[tuple[np.ndarray, np.ndarray]] = []
        for i in range(len(queries)):
            lo, hi = cosine.indptr[i], cosine.indptr[i + 1]
            idx, val = cosine.indices[lo:hi], cosine.data[lo:hi]
            take = min(len(idx), k * 8)
            top = np.argpartition(-val, take - 1)[:take] if 0 < take < len(idx) else np.arange(len(idx))
            top = top[np.lexsort((idx[top], -val[top]))]
            top = top[val[top] >= min_score]
            tops.append((idx[top], val[top]))
        # idf mass each (query, name) pair shares, for all pairs in one sparse product
        pair_query, pair_term = _pairs([terms for terms, _ in tops])
        shared = _row_products(self._binary, pair_term, q_weight, pair_query)
        out: list[list[LexicalHit]] = []
        start = 0
        for i, (terms, scores) in enumerate(tops):
            common = shared[start : start + len(terms)]
            start += len(terms)
            hits: list[LexicalHit] = []
            seen: set[str] = set()
            for term_id, score, mass in zip(terms, scores, common, strict=True):
                code = self.codes[term_id]
                if code in seen:
                    continue
                seen.add(code)
                hits.append(self._hit(int(term_id), float(score), float(mass), float(q_mass[i])))
                if len(hits) >= k:
                    break
            out.append(hits)
        return out


WordRows = tuple[dict[str, int], np.ndarray, np.ndarray]
"""(word -> id, CSR row pointers, word ids in each name's row, sorted)."""


def _word_rows(terms: Sequence[Term]) -> WordRows:
    vocab: dict[str, int] = {}
    rows: list[list[int]] = []
    for text in term_columns(terms).texts:
        rows.append(sorted({vocab.setdefault(t, len(vocab)) for t in tokens(text)}))
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(indptr[-1]))
    return vocab, indptr, indices


LEXICAL_FILE = "lexical.npz"
"""The word rows of a pack's lexical indexes (`save_lexical` / `load_lexical`)."""
LEXICAL_FORMAT = 1


def save_lexical(indexes: Mapping[str, LexicalIndex], key: str, folder: Path) -> Path:
    """Write the word rows of each system's index into a pack folder, under `key` (the catalog's
    fingerprint: the names they were computed from)."""
    arrays: dict[str, np.ndarray] = {
        "format": np.asarray(LEXICAL_FORMAT),
        "key": np.asarray(key),
        "systems": np.asarray(sorted(indexes)),
    }
    for n, system in enumerate(sorted(indexes)):
        vocab, indptr, indices = indexes[system].word_rows()
        arrays[f"{n}.vocab"] = np.asarray(list(vocab), dtype=str)
        arrays[f"{n}.indptr"] = np.asarray(indptr, dtype=np.int64)
        arrays[f"{n}.indices"] = np.asarray(indices, dtype=np.int32)
    file = Path(folder) / LEXICAL_FILE
    partial = file.with_name(file.name + ".partial")
    with partial.open("wb") as fh:  # written whole, then renamed: a reader never sees half a file
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
    partial.replace(file)
    return file


def load_lexical(
    folder: Path, terms: Mapping[str, Sequence[Term]], key: str
) -> dict[str, LexicalIndex] | None:
    """The lexical indexes of a pack folder over `terms` (per system), or None when the folder has none
    (a pack saved before they were stored) or they were computed from other names than `key` says: the
    caller builds them then."""
    file = Path(folder) / LEXICAL_FILE
    if not file.is_file():
        return None
    with np.load(file, allow_pickle=False) as data:
        if int(data["format"]) != LEXICAL_FORMAT or str(data["key"]) != key:
            log.warning(
                "model pack %s: stored lexical indexes are for other code names; rebuilding them", folder
            )
            return None
        systems = [str(s) for s in data["systems"]]
        if set(systems) != set(terms):
            return None
        out: dict[str, LexicalIndex] = {}
        for n, system in enumerate(systems):
            vocab = {word: i for i, word in enumerate(data[f"{n}.vocab"].tolist())}
            words = (vocab, data[f"{n}.indptr"], data[f"{n}.indices"])
            out[system] = LexicalIndex(terms[system], words)
    return out


def lexical_indexes(
    catalog: CodeCatalog, pack: Path | None = None, cache_dir: Path | None = None
) -> dict[str, LexicalIndex]:
    """Each system's lexical index over a catalog's names. The word rows come from the pack folder `pack`
    when it stores them for these names (a quick load), else from `cache_dir` (the built-in model's cache,
    filled on first use), else they are built (seconds: every name is normalised)."""
    terms = {system: catalog.names(system) for system in catalog.systems()}
    cached = Path(cache_dir) / "lexical" / catalog.fingerprint if cache_dir is not None else None
    for folder in (pack, cached):
        stored = load_lexical(folder, terms, catalog.fingerprint) if folder is not None else None
        if stored is not None:
            return stored
    built = {system: LexicalIndex(names) for system, names in terms.items()}
    if cached is not None:
        try:
            cached.mkdir(parents=True, exist_ok=True)
            save_lexical(built, catalog.fingerprint, cached)
        except OSError as exc:  # a cache that cannot be written only costs the next start time
            log.warning("could not cache the lexical indexes in %s: %s", cached, exc)
    return built


def _pairs(groups: Sequence[Sequence[int] | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(query index, name row) of every name of every query's group, flattened in order."""
    queries = np.concatenate([np.full(len(g), i, dtype=np.int64) for i, g in enumerate(groups)])
    names = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups])
    return queries, names


def _row_products(
    names: sparse.csr_matrix, name_rows: np.ndarray, queries: sparse.csr_matrix, query_rows: np.ndarray
) -> np.ndarray:
    """Dot product of each (name row, query row) pair, all pairs in one sparse pass."""
    return np.asarray(names[name_rows].multiply(queries[query_rows]).sum(axis=1)).ravel()
