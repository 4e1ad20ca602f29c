"""The term lexicon of mention recognition: normalised term keys -> mention type and codes.

A key is the sequence of a term's token normal forms (see normalize.py) joined by spaces, so "Crohn's
diseases" and "crohn disease" share the key "crohn disease", and "HTN" the key "hypertension". Matching is
leftmost-longest over those keys (`Lexicon.get` / `Lexicon.is_prefix`). Every entry keeps the codes its
terms point at (highest-priority source first): they become `Mention.concepts`, the candidates of the
ranking step.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from spacy.tokenizer import Tokenizer

from medcode.model.text.normalize import Normalization

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Format of the pickled lexicon cache (`write` / `read`)."""
JSON_FORMAT = 2
"""Format `to_json` writes: columns (keys, types, codes, sources) and the key prefixes, which load several
times faster than format 1's rows (still read: packs saved before)."""
MENTION_TYPES = ("condition", "sign_symptom", "procedure", "injury")
MAX_KEY_TOKENS = 10
DEFAULT_MAX_CODES = 12
TRUSTED_SOURCES = frozenset({"explicit", "core", "abbreviation"})
"""Sources whose one-word terms are kept even when short ("HIV", "gout")."""
NEW_KEYS_ONLY = frozenset({"icd10cm_part"})
"""Sources that only add keys: "type 2 diabetes mellitus" taken from "Type 2 diabetes mellitus with
diabetic nephropathy" must not add E11.21 to the key the title of E11.9 made."""


@dataclass(frozen=True)
class TermSpec:
    """One term for the lexicon: its text as written, the mention type and the codes it points at."""

    text: str
    type: str = "condition"
    codes: tuple[str, ...] = ()
    source: str = "explicit"


@dataclass
class LexiconEntry:
    type: str
    codes: tuple[str, ...]
    source: str


@dataclass
class Lexicon:
    """Normalised term keys -> entries, with the set of key prefixes for longest matching."""

    entries: dict[str, tuple[str, tuple[str, ...], str]]
    """key -> (mention type, codes, source of the first term that produced the key)."""
    prefixes: set[str] = field(default_factory=set)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.prefixes:
            self.prefixes = _prefixes(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def get(self, key: str) -> LexiconEntry | None:
        found = self.entries.get(key)
        return None if found is None else LexiconEntry(*found)

    def is_prefix(self, key: str) -> bool:
        return key in self.prefixes

    # build ------------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        specs: Iterable[TermSpec],
        keyer: TermKeyer,
        *,
        stop_keys: frozenset[str] = frozenset(),
        max_codes: int = DEFAULT_MAX_CODES,
        meta: dict[str, Any] | None = None,
    ) -> Lexicon:
        """Compile terms (highest priority first: the first term of a key sets its type)."""
        spec_list = list(specs)
        keyed = list(zip(spec_list, keyer.keys(s.text for s in spec_list), strict=True))
        return cls.build_keyed(keyed, keyer, stop_keys=stop_keys, max_codes=max_codes, meta=meta)

    @classmethod
    def build_keyed(
        cls,
        keyed: Iterable[tuple[TermSpec, str]],
        keyer: TermKeyer,
        *,
        stop_keys: frozenset[str] = frozenset(),
        max_codes: int = DEFAULT_MAX_CODES,
        meta: dict[str, Any] | None = None,
    ) -> Lexicon:
        """Compile terms already turned into keys (see `TermKeyer.keys`), highest priority first."""
        merged: dict[str, tuple[str, list[str], str]] = {}
        for spec, key in _with_variants(keyed):
            if not key or not keyer.acceptable(key, spec.source):
                continue
            if key in stop_keys and spec.source not in TRUSTED_SOURCES:
                continue
            current = merged.get(key)
            if current is None:
                merged[key] = (spec.type, list(dict.fromkeys(spec.codes)), spec.source)
                continue
            if spec.source in NEW_KEYS_ONLY and current[2] != spec.source:
                continue
            codes = current[1]
            if len(codes) < max_codes:
                for code in spec.codes:
                    if code not in codes:
                        codes.append(code)
                del codes[max_codes:]
        types = {t: t for t in MENTION_TYPES}
        entries = {
            key: (types.get(kind, kind), tuple(codes), source)
            for key, (kind, codes, source) in merged.items()
        }
        return cls(entries, meta=dict(meta or {}))

    # persistence ------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Plain data (what a model pack stores): one column per field, an entry's codes joined by spaces,
        and the sorted key prefixes (so loading need not derive them)."""
        values = self.entries.values()
        codes = [" ".join(codes) for _, codes, _ in values]
        if any(" " in code for _, entry_codes, _ in values for code in entry_codes):
            raise ValueError("a lexicon code contains a space")
        return {
            "format": JSON_FORMAT,
            "meta": self.meta,
            "keys": list(self.entries),
            "types": [kind for kind, _, _ in values],
            "codes": codes,
            "sources": [source for _, _, source in values],
            "prefixes": sorted(self.prefixes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lexicon:
        meta = dict(data.get("meta") or {})
        if data.get("format") == 1:  # rows of [key, type, codes, source]
            entries = {
                str(key): (str(kind), tuple(codes), str(source))
                for key, kind, codes, source in data["entries"]
            }
            return cls(entries, meta=meta)
        if data.get("format") != JSON_FORMAT:
            raise ValueError(f"lexicon data has format {data.get('format')}, not {JSON_FORMAT}")
        columns = (data["keys"], data["types"], data["codes"], data["sources"])
        if len({len(column) for column in columns}) != 1:
            raise ValueError("lexicon columns differ in length")
        codes = [tuple(joined.split(" ")) if joined else () for joined in data["codes"]]
        entries = dict(
            zip(data["keys"], zip(data["types"], codes, data["sources"], strict=True), strict=True)
        )
        return cls(entries, prefixes=set(data["prefixes"]), meta=meta)

    def write(self, handle: BinaryIO) -> None:
        """Pickle the lexicon into an open cache file (`data.cache.write_cache`)."""
        payload = {
            "format": FORMAT_VERSION,
            "entries": self.entries,
            "meta": self.meta,
            "prefixes": self.prefixes,
        }
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def read(cls, handle: BinaryIO) -> Lexicon:
        """A lexicon pickled by `write` (`data.cache.read_cache`); ValueError for another format."""
        payload = pickle.load(handle)
        if payload.get("format") != FORMAT_VERSION:
            raise ValueError(f"lexicon cache has format {payload.get('format')}, not {FORMAT_VERSION}")
        return cls(
            payload["entries"], prefixes=payload.get("prefixes") or set(), meta=payload.get("meta", {})
        )


def _with_variants(keyed: Iterable[tuple[TermSpec, str]]) -> Iterator[tuple[TermSpec, str]]:
    """Each (term, key), then key variants: "ckd stage 3b" also matches "ckd 3b"."""
    later: list[tuple[TermSpec, str]] = []
    for spec, key in keyed:
        yield spec, key
        if " stage " in key:
            later.append((spec, key.replace(" stage ", " ")))
    yield from later


def _prefixes(entries: Iterable[str]) -> set[str]:
    prefixes: set[str] = set()
    for key in entries:
        position = key.find(" ")
        while position != -1:
            prefixes.add(key[:position])
            position = key.find(" ", position + 1)
    return prefixes


class TermKeyer:
    """Turns term texts into lexicon keys with the pipeline's own tokenizer and normalisation."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        normalization: Normalization,
        stopwords: frozenset[str],
        generic_words: frozenset[str] = frozenset(),
    ) -> None:
        self.tokenizer = tokenizer
        self.normalization = normalization
        self.stopwords = stopwords
        self.generic_words = generic_words
        """Words that do not make a mention on their own (anatomical sites, laterality, severity...)."""

    def key(self, text: str) -> str:
        return next(self.keys([text]))

    def keys(self, texts: Iterable[str]) -> Iterator[str]:
        norm = self.normalization
        for doc in self.tokenizer.pipe(texts, batch_size=2000):
            pieces: list[str] = []
            for token in doc:
                if token.is_space or norm.is_transparent(token.text):
                    continue
                pieces.extend(norm.token(token.text).split())
            yield " ".join(pieces)

    def acceptable(self, key: str, source: str) -> bool:
        """A key worth matching: not too long, with a content word; short single words only if curated."""
        words = key.split(" ")
        if len(words) > MAX_KEY_TOKENS:
            return False
        content = [w for w in words if w not in self.stopwords and any(ch.isalpha() for ch in w)]
        if not content:
            return False
        if source not in TRUSTED_SOURCES and all(w in self.generic_words for w in content):
            return False  # "right eye", "the skin": a site, not a mention
        return not (len(words) == 1 and source not in TRUSTED_SOURCES and sum(ch.isalpha() for ch in key) < 4)
