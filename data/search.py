"""Text search over code titles and synonyms: `get_code_search().search("type 2 diabetes with ckd")`.

What is searched: ICD-10-CM titles (with 7th-character expansions) and inclusion terms, plus, when the
data folder has them, ICD-10-CM index terms (main index, neoplasm and drug tables), Disease Ontology
synonyms, ICD-10-PCS and HCPCS titles. Each (code, text) pair is one row of a TF-IDF matrix (scikit-learn,
word 1-2 grams over lightly stemmed tokens, sublinear tf, cosine ranking); a code scores the best of its
rows. Query words the vocabulary does not know are mapped to the nearest known word by character 3-gram
similarity, so small typos still match. A query shaped like a code ("e11.2", "BW03") lists that code and
the codes it prefixes first.

Where the caller names a cache folder, the fitted index is pickled under `cache_dir/search`, keyed by the sources' sizes and
mtimes, so a later process loads it in about a second.

Why this is not `model.candidates.lexical.LexicalIndex`, the other TF-IDF index over code names: they
answer different questions and merging them would change one side's output. This one ranks whole code
systems for a person typing (bigrams, sublinear tf, typo repair, code-prefix queries, 7th-character
expansions, HCPCS and CPT, a pickled cache keyed by the source files). The lexical index scores a note's
mentions against chosen codes for the model (binary unigrams over `model.candidates.tokens`, the
query/name coverages the trained ranker was fitted on, names from the catalog a model pack carries, no
expansions). Both read their names from `data.codesystems.CodeSets` and their abbreviations from
`data.text_norm`.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import logging
import pickle
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode.data.cache import read_cache, write_cache
from medcode.data.codesystems import CodeSets, canonical_system, load_code_sets
from medcode.data.text_norm import abbreviations

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

logger = logging.getLogger(__name__)

FORMAT_VERSION = 4
"""Bump when the indexed texts or their analysis change (the abbreviation table included)."""
_TOKEN = re.compile(r"[a-z0-9]+")
_PLURALS = (("ies", "y"), ("sses", "ss"), ("es", ""), ("s", ""))
_SUFFIXES = (
    "ically",
    "ations",
    "ation",
    "ically",
    "ical",
    "ious",
    "ness",
    "ment",
    "ing",
    "ion",
    "ity",
    "ous",
    "ive",
    "al",
    "ed",
    "ic",
    "y",
    "e",
)
_WORD_SYNONYMS = {"ii": "2", "i": "1", "two": "2", "one": "1", "iii": "3", "iv": "4"}
"""Only where the tabular's own wording differs ("type II" -> "type 2")."""
_QUALIFIERS = frozenset(
    ("right", "left", "bilateral", "unspecified", "initial", "subsequent", "sequela", "encounter", "episode")
)
"""Words that pick among sibling codes (laterality, encounter) rather than name the condition: they weigh
less in a query, and a code must match the other words ("hip fracture right initial": "hip", "fracture")."""
_LINKING_WORDS = frozenset(("of", "with", "and", "the", "in", "for", "to", "on", "a", "due", "or", "by"))
"""Not main words: a row need not contain them to match the query's meaning."""
_QUALIFIER_WEIGHT = 0.5
_COVERAGE_FLOOR = 0.55
"""A row matching none of the query's main words keeps this share of its cosine; all of them, the whole."""
_NOS = re.compile(r",?\s+NOS\b")
_CODE_QUERY = re.compile(r"^[A-Za-z0-9]{1,3}(\.[A-Za-z0-9]{0,4})?$|^[A-Za-z0-9]{4,7}$")


@lru_cache(maxsize=262_144)
def stem(word: str) -> str:
    """A small, deterministic suffix stripper ("diabetes"/"diabetic" -> "diabet")."""
    if word.isdigit() or len(word) <= 3:
        return word
    for suffix, replacement in _PLURALS:
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=1)
def _expansions() -> tuple[re.Pattern[str], dict[str, str]]:
    """The project's abbreviations (data/text_norm.py) in code-title wording, as one regex and a lookup."""
    table = abbreviations().title_words()
    keys = sorted(table, key=len, reverse=True)
    pattern = re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(k) for k in keys) + r")(?![a-z0-9])")
    return pattern, table


def expand(text: str) -> str:
    """Append the expansion after each known abbreviation ("ckd" -> "ckd chronic kidney disease")."""
    pattern, table = _expansions()
    return pattern.sub(lambda m: f"{m.group(1)} {table[m.group(1)]}", text)


def tokens(text: str) -> list[str]:
    words = _TOKEN.findall(expand(text.lower().replace("'s", "")))
    return [stem(_WORD_SYNONYMS.get(w, w)) for w in words]


def analyze(text: str | tuple[str, ...]) -> list[str]:
    """Word unigrams and bigrams of the stemmed tokens (the TF-IDF analyzer; module level so it pickles).
    A tuple is taken as tokens already stemmed (the query path)."""
    words = list(text) if isinstance(text, tuple) else tokens(text)
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _char_grams(word: str) -> list[str]:
    padded = f"<{word}>"
    return [padded[i : i + 3] for i in range(len(padded) - 2)]


@dataclass(frozen=True, slots=True)
class SearchHit:
    code: str
    system: str
    title: str
    score: float
    matched_term: str
    """The title, inclusion term or synonym that matched best."""


@dataclass(frozen=True, slots=True)
class SearchDoc:
    system: str
    code: str
    text: str
    kind: str
    """"title", "inclusion", "inherited" (an ancestor's inclusion term), "index", "synonym", "short_title"."""


@dataclass
class _SystemIndex:
    matrix_t: csr_matrix
    """Features x rows (transposed), so a query touches only its own features' rows."""
    codes: list[str]
    texts: list[str]
    kinds: list[str]
    sorted_codes: list[str]


@dataclass
class _Payload:
    vectorizer: Any
    fuzzy_vectorizer: Any
    fuzzy_matrix: Any
    vocabulary_words: list[str]
    systems: dict[str, _SystemIndex]
    titles: dict[tuple[str, str], str]
    versions: dict[str, str] = field(default_factory=dict)


class CodeSearch:
    """Ranked text search over the code systems' titles and synonyms."""

    def __init__(self, payload: _Payload) -> None:
        self._p = payload
        self._vocab: dict[str, int] = payload.vectorizer.vocabulary_
        qualifiers = _qualifier_stems()
        features = list(qualifiers) + [f"{a} {b}" for a in qualifiers for b in qualifiers]
        self._qualifier_columns = frozenset(self._vocab[f] for f in features if f in self._vocab)

    @property
    def systems(self) -> list[str]:
        return list(self._p.systems)

    @property
    def versions(self) -> dict[str, str]:
        return dict(self._p.versions)

    def __len__(self) -> int:
        return sum(len(idx.codes) for idx in self._p.systems.values())

    # build ----------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        docs: Iterable[SearchDoc],
        titles: dict[tuple[str, str], str],
        versions: dict[str, str] | None = None,
    ) -> CodeSearch:
        from sklearn.feature_extraction.text import TfidfVectorizer

        rows = sorted(set(docs), key=lambda d: (d.system, d.code, d.kind, d.text))
        if not rows:
            raise ValueError("nothing to index")
        vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, dtype=np.float32)
        matrix = vectorizer.fit_transform(d.text for d in rows).tocsr()
        systems: dict[str, _SystemIndex] = {}
        start = 0
        while start < len(rows):
            system = rows[start].system
            end = start
            while end < len(rows) and rows[end].system == system:
                end += 1
            part = rows[start:end]
            systems[system] = _SystemIndex(
                matrix_t=matrix[start:end].T.tocsr(),
                codes=[d.code for d in part],
                texts=[d.text for d in part],
                kinds=[d.kind for d in part],
                sorted_codes=sorted({code.replace(".", "") for (s, code) in titles if s == system}),
            )
            start = end
        words = sorted(w for w in vectorizer.vocabulary_ if " " not in w and not w.isdigit())
        fuzzy = TfidfVectorizer(analyzer=_char_grams, dtype=np.float32)
        fuzzy_matrix = fuzzy.fit_transform(words).tocsr()
        payload = _Payload(vectorizer, fuzzy, fuzzy_matrix, words, systems, titles, dict(versions or {}))
        return cls(payload)

    # query ----------------------------------------------------------------------------------------------
    def _fix_word(self, word: str) -> str | None:
        """The known word nearest to an unknown one by character 3-grams (None when nothing is close)."""
        query = self._p.fuzzy_vectorizer.transform([word])
        if query.nnz == 0:
            return None
        scores = (self._p.fuzzy_matrix @ query.T).toarray().ravel()
        best = int(np.argmax(scores))
        return self._p.vocabulary_words[best] if scores[best] >= 0.5 else None

    def _query_words(self, text: str) -> list[str]:
        words = []
        for word in tokens(text):
            if word in self._vocab:
                words.append(word)
            else:
                fixed = self._fix_word(word)
                if fixed is not None:
                    words.append(fixed)
        return words

    def _query_vector(self, words: list[str]) -> Any:
        """The query's TF-IDF vector with qualifier words (and bigrams made only of them) down-weighted."""
        if not words:
            return None
        vector = self._p.vectorizer.transform([tuple(words)]).tocsr()
        for k, column in enumerate(vector.indices):
            if column in self._qualifier_columns:
                vector.data[k] *= _QUALIFIER_WEIGHT
        return vector

    def _code_hits(self, text: str, systems: list[str], limit: int) -> list[SearchHit]:
        query = text.strip().upper().replace(".", "")
        if not _CODE_QUERY.match(text.strip()) or not query[:1].isalnum():
            return []
        hits: list[SearchHit] = []
        for system in systems:
            index = self._p.systems[system]
            i = bisect.bisect_left(index.sorted_codes, query)
            while (
                i < len(index.sorted_codes) and index.sorted_codes[i].startswith(query) and len(hits) < limit
            ):
                compact = index.sorted_codes[i]
                code = self._display_code(system, compact)
                title = self._p.titles.get((system, code), "")
                score = 1.0 if compact == query else 0.99 - 0.001 * min(len(compact) - len(query), 9)
                hits.append(SearchHit(code, system, title, round(score, 4), code))
                i += 1
        return hits

    @staticmethod
    def _coverage_factor(main_words: set[str], text: str) -> float:
        """From _COVERAGE_FLOOR (the row has none of the query's main words) to 1 (it has all of them)."""
        covered = len(main_words & set(tokens(text))) / len(main_words)
        return _COVERAGE_FLOOR + (1 - _COVERAGE_FLOOR) * covered

    @staticmethod
    def _display_code(system: str, compact: str) -> str:
        if system == "ICD-10-CM" and len(compact) > 3:
            return f"{compact[:3]}.{compact[3:]}"
        return compact

    def search(self, text: str, system: str | None = None, limit: int = 10) -> list[SearchHit]:
        """The best `limit` codes for `text`, highest score first; `system` restricts to one code system."""
        limit = max(1, min(int(limit), 200))
        names = [canonical_system(system)] if system else list(self._p.systems)
        names = [n for n in names if n in self._p.systems]
        if not text.strip() or not names:
            return []
        hits = self._code_hits(text, names, limit)
        seen = {(h.system, h.code) for h in hits}
        words = self._query_words(text)
        vector = self._query_vector(words)
        if vector is None or vector.nnz == 0:
            return hits[:limit]
        candidates: list[tuple[float, str, int]] = []
        for name in names:
            index = self._p.systems[name]
            scores = (vector @ index.matrix_t).toarray().ravel()
            k = min(len(scores), limit * 8 + 20)
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            candidates.extend((float(scores[i]), name, int(i)) for i in top if scores[i] > 0)
        main_words = set(words) - _qualifier_stems() - _LINKING_WORDS
        if main_words:
            candidates = [
                (score * self._coverage_factor(main_words, self._p.systems[name].texts[row]), name, row)
                for score, name, row in candidates
            ]
        candidates.sort(key=lambda c: (-c[0], len(self._p.systems[c[1]].texts[c[2]])))
        for score, name, row in candidates:
            index = self._p.systems[name]
            key = (name, index.codes[row])
            if key in seen:
                continue
            seen.add(key)
            title = self._p.titles.get(key, index.texts[row])
            hits.append(SearchHit(key[1], name, title, round(score, 4), index.texts[row]))
            if len(hits) >= limit:
                break
        return hits[:limit]


@lru_cache(maxsize=1)
def _qualifier_stems() -> frozenset[str]:
    return frozenset(stem(word) for word in _QUALIFIERS)


# ---------------------------------------------------------------------------------------------- sources


def code_set_docs(code_sets: CodeSets) -> tuple[list[SearchDoc], dict[tuple[str, str], str]]:
    """Rows to index and (system, code) -> title, from every code system present."""
    docs: list[SearchDoc] = []
    titles: dict[tuple[str, str], str] = {}
    cm = "ICD-10-CM"
    for entry in code_sets.icd10cm.entries():
        titles[(cm, entry.code)] = entry.title
        docs.append(SearchDoc(cm, entry.code, entry.title, "title"))
        docs.extend(SearchDoc(cm, entry.code, text, "inclusion") for text in entry.inclusion_terms)
        docs.extend(
            SearchDoc(cm, entry.code, text, "inherited") for text in _inherited_terms(code_sets, entry)
        )
    for term in code_sets.index_terms:
        code = term.code_prefix
        if code and (cm, code) in titles:
            docs.append(SearchDoc(cm, code, term.phrase, "index"))
    if code_sets.disease_ontology is not None:
        for text, code in code_sets.disease_ontology.pairs():
            if (cm, code) in titles:
                docs.append(SearchDoc(cm, code, text, "synonym"))
    if code_sets.icd10pcs is not None:
        for code, title in code_sets.icd10pcs.items():
            titles[("ICD-10-PCS", code)] = title
            docs.append(SearchDoc("ICD-10-PCS", code, title, "title"))
    if code_sets.hcpcs is not None:
        for item in code_sets.hcpcs.entries():
            titles[("HCPCS", item.code)] = item.title
            docs.append(SearchDoc("HCPCS", item.code, item.title, "title"))
            if item.short_title and item.short_title.lower() != item.title.lower():
                docs.append(SearchDoc("HCPCS", item.code, item.short_title, "short_title"))
    for cpt in code_sets.cpt.entries():
        titles[("CPT", cpt.code)] = cpt.title
        docs.append(SearchDoc("CPT", cpt.code, cpt.title, "title"))
    return docs, titles


def _inherited_terms(code_sets: CodeSets, entry: Any) -> list[str]:
    """The inclusion terms of the code's nearest ancestor that has any, when the code only adds qualifiers
    (laterality, encounter) to that ancestor, with those qualifiers: S72.00 "Fracture of unspecified part
    of neck of femur" includes "Fracture of hip NOS", so S72.001A is also "Fracture of hip, right, initial
    encounter for closed fracture". "NOS" is dropped: it says the bare phrase belongs here, which is what a
    coder typing the phrase means. A child naming a new site (M84.441 "..., right hand" under M84.4
    "Pathological fracture NOS") inherits nothing."""
    tabular = code_sets.icd10cm
    qualifiers = _qualifier_stems()
    seventh = ""
    if entry.seventh_char and entry.parent:
        seventh = tabular[entry.parent].seventh_chars.get(entry.seventh_char, "")
    own = set(tokens(entry.title)) - qualifiers - set(tokens(seventh))
    for parent in tabular.parents(entry.code):
        ancestor = tabular[parent]
        if not ancestor.inclusion_terms:
            continue
        if not own <= set(tokens(ancestor.title)):
            return []
        words = [
            w for w in _TOKEN.findall(entry.title.lower()) if stem(w) in qualifiers and w != "unspecified"
        ]
        extra = ", ".join(
            [*dict.fromkeys(w for w in words if w not in seventh), *([seventh] if seventh else [])]
        )
        return [
            f"{_NOS.sub('', term)}, {extra}" if extra else _NOS.sub("", term)
            for term in ancestor.inclusion_terms
        ]
    return []


def _source_files(code_sets: CodeSets) -> Iterator[Path]:
    from medcode.data.disease_ontology import find_do_folder
    from medcode.data.hcpcs import find_hcpcs_file
    from medcode.data.icd10cm import tabular_path
    from medcode.data.icd10cm_index import find_index_files
    from medcode.data.icd10pcs import find_pcs_files

    yield tabular_path()
    if code_sets.data_dir is not None:
        data_dir = code_sets.data_dir
        yield from find_index_files(data_dir).values()
        yield from (p for p in find_pcs_files(data_dir) if p is not None)
        hcpcs = find_hcpcs_file(data_dir)
        if hcpcs is not None:
            yield hcpcs
        folder = find_do_folder(data_dir)
        if folder is not None:
            yield from sorted(folder.glob("*.tsv"))
    if code_sets.cpt_file is not None and code_sets.cpt_file.is_file():
        yield code_sets.cpt_file


def fingerprint(code_sets: CodeSets) -> str:
    """A key that changes when any indexed source file (or the index layout) changes."""
    from medcode.data.icd10cm import FORMAT_VERSION as CM_FORMAT

    digest = hashlib.sha256(f"search-v{FORMAT_VERSION}-cm-v{CM_FORMAT}".encode())
    for path in _source_files(code_sets):
        stat = path.stat()
        digest.update(f"|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the `keep` most recently written index files (each source set has its own)."""
    files = sorted(folder.glob("index-*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in files[keep:]:
        stale.unlink(missing_ok=True)


def load_code_search(code_sets: CodeSets | None = None, cache_dir: Path | None = None) -> CodeSearch:
    """Build the search index over the given or default code sets, through `cache_dir/search` when given."""
    code_sets = code_sets or load_code_sets()
    started = time.perf_counter()
    cache = cache_dir / "search" / f"index-{fingerprint(code_sets)}.pkl" if cache_dir is not None else None
    cached = (
        read_cache(cache, lambda h: CodeSearch(pickle.load(h)), "search cache") if cache is not None else None
    )
    if cached is not None:
        logger.info(
            "loaded the code search index (%d rows) in %.2f s", len(cached), time.perf_counter() - started
        )
        return cached
    docs, titles = code_set_docs(code_sets)
    search = CodeSearch.build(docs, titles, code_sets.available())
    dump = partial(pickle.dump, search._p, protocol=pickle.HIGHEST_PROTOCOL)
    if cache is not None and write_cache(cache, dump, "search cache"):
        with contextlib.suppress(OSError):  # another process pruning at the same time
            _prune(cache.parent, keep=4)
    logger.info("built the code search index (%d rows) in %.2f s", len(search), time.perf_counter() - started)
    return search


@lru_cache(maxsize=2)
def get_code_search(code_sets: CodeSets | None = None, cache_dir: Path | None = None) -> CodeSearch:
    """The search index over `code_sets` (default: the packaged ICD-10-CM only), built once per process."""
    return load_code_search(code_sets, cache_dir)
