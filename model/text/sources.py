"""Where the full lexicon's terms come from, and its on-disk cache.

Sources, highest priority first (the first source of a key sets its mention type; codes accumulate):
  1. resources/core_terms.tsv — curated clinical terms (abbreviations expand to them);
  2. the ICD-10-CM alphabetic index main terms, with their nonessential modifiers (when MEDCODE_DATA_DIR
     has the index);
  3. ICD-10-CM tabular titles, cleaned ("Pneumonia, unspecified organism" -> "pneumonia", "Essential
     (primary) hypertension" -> "essential hypertension" and "essential primary hypertension");
  4. index subterms as phrases ("Pneumonia, aspiration" -> "aspiration pneumonia", "pneumonia of
     aspiration"), tabular inclusion terms, and parts of titles ("X with Y" -> "X", "Y");
  5. Disease Ontology names and exact synonyms with ICD-10-CM cross-references;
  6. CodiEsp training phrasing: short n-grams of the English train notes strongly associated with a gold
     code (see `mine_codiesp`).
`build_default_lexicon(keyer, data_dir)` compiles them and `full_pipeline(data_dir, cache_dir)` is the text
pipeline over them (what training builds; `get_pipeline` keeps one per process for command-line tools); a
trained model pack carries the result (see `model.text.pipeline.save_lexicon`), so a loaded pack never
reads the datasets folder. Tools outside a pack
may keep the compiled lexicon in a cache folder they pass in (`load_default_lexicon(..., cache_dir=...)`),
keyed by the content of the resource files and the versions of the sources.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

from medcode.data.cache import read_cache, write_cache
from medcode.data.errors import MedcodeError
from medcode.data.types import Encounter
from medcode.model.text.lexicon import Lexicon, TermKeyer, TermSpec
from medcode.model.text.pipeline import (
    KEY_RESOURCES,
    TextPipeline,
    build_pipeline,
    make_keyer,
    make_nlp,
    read_word_list,
    stop_keys,
)
from medcode.model.text.rules import resource_path, resources_fingerprint

logger = logging.getLogger(__name__)

SOURCES_VERSION = 7
"""Bump when term generation changes: cached lexicons are then rebuilt."""
RESOURCE_FILES = (
    "core_terms.tsv",
    "abbreviations.tsv",
    "normalization.json",
    "stopwords.txt",
    "lexicon_stopterms.txt",
    "tokenizer.json",
)
MAX_TERM_WORDS = 10
_CONNECTORS = (
    "with ",
    "without ",
    "in ",
    "due to ",
    "of ",
    "following ",
    "after ",
    "from ",
    "by ",
    "during ",
)
_CUT_MARKERS = (
    ", unspecified",
    ", not elsewhere classified",
    ", not otherwise specified",
    ", initial encounter",
    ", subsequent encounter",
    ", sequela",
)
_DROP_WORDS = re.compile(
    r"\b(?:NEC|NOS|unspecified|not elsewhere classified|specified type)\b", re.IGNORECASE
)
_TRAILING_QUALIFIERS = re.compile(
    r"\s+(?:without complications?|without mention of \w+(?: \w+)?|not specified as [\w ]+|site not specified|"
    r"of unspecified site|unspecified site|of unspecified part|unspecified part|unspecified organism|"
    r"organism unspecified|unspecified type)$",
    re.IGNORECASE,
)
_PARENS = re.compile(r"\s*\(([^()]*)\)")
_BRACKETS = re.compile(r"\s*\[([^\[\]]*)\]")
_SKIP_TITLES = ("encounter for", "other ", "other specified", "personal history", "family history")


# ---------------------------------------------------------------------------------------------- types


def mention_type_of(code: str) -> str:
    """Mention type implied by a code: ICD-10-PCS -> procedure; R -> sign_symptom; S/T -> injury."""
    if not code:
        return "condition"
    if "." not in code and len(code) >= 4:
        return "procedure"
    first = code[0].upper()
    if first == "R":
        return "sign_symptom"
    if first in ("S", "T"):
        return "injury"
    return "condition"


# ---------------------------------------------------------------------------------------------- cleaning


def clean_title(title: str) -> list[str]:
    """Matchable phrases of a code title or inclusion term, most faithful first."""
    text = " ".join(title.split())
    lowered = text.lower()
    for marker in _CUT_MARKERS:
        index = lowered.find(marker)
        if index > 0:
            text = text[:index]
            lowered = lowered[:index]
    out: list[str] = []
    variants = [text]
    if _BRACKETS.search(text):
        variants = [_BRACKETS.sub("", text), *_abbreviated(text)]
    for variant in variants:
        if _PARENS.search(variant):
            out.append(_PARENS.sub("", variant))
            out.append(_PARENS.sub(lambda m: " " + m.group(1), variant))
        else:
            out.append(variant)
    cleaned: list[str] = []
    for phrase in out:
        phrase = _DROP_WORDS.sub(" ", phrase)
        phrase = _TRAILING_QUALIFIERS.sub("", " ".join(phrase.split()))
        phrase = " ".join(phrase.strip(" ,;:-").split())
        if phrase.lower().startswith("unspecified "):
            phrase = phrase[len("unspecified ") :]
        if phrase and phrase not in cleaned:
            cleaned.append(phrase)
    return cleaned


def _abbreviated(text: str) -> list[str]:
    """ "Human immunodeficiency virus [HIV] disease" -> "HIV disease": a bracketed abbreviation replaces as
    many preceding words as it has letters (else it is left out: "Abnormal electroencephalogram [EEG]")."""
    match = _BRACKETS.search(text)
    if match is None:
        return []
    abbreviation = match.group(1).strip()
    before = text[: match.start()].split()
    letters = sum(ch.isalpha() for ch in abbreviation)
    if not abbreviation.isalnum() or not 2 <= letters <= len(before):
        return []
    after = _BRACKETS.sub("", text[match.end() :])
    return [" ".join([*before[: len(before) - letters], abbreviation, after]).strip()]


def split_parts(phrase: str) -> list[str]:
    """Looser phrases of a title: "X with Y" -> "X", "Y"; "X of Y" -> "Y X"; "X, Y" -> "Y X"."""
    parts: list[str] = []
    lowered = phrase.lower()
    for connector in (" with ", " without ", " due to ", " in "):
        index = lowered.find(connector)
        if index > 0:
            head, tail = phrase[:index], phrase[index + len(connector) :]
            if tail.lower().startswith("situ"):
                break
            if connector in (" with ", " due to ") and len(tail.split()) >= 2:
                parts.append(tail)
            parts.append(head)
            break
    if ", " in phrase and " with " not in lowered:
        head, _, tail = phrase.partition(", ")
        if tail and len(tail.split()) <= 3:
            parts.append(f"{tail} {head}")
            parts.append(head)
    match = re.fullmatch(r"(\w[\w\- ]*?) of (?:the )?(\w[\w\- ]*)", phrase, flags=re.IGNORECASE)
    if match and len(match.group(2).split()) <= 3:
        parts.append(f"{match.group(2)} {match.group(1)}")
    return [
        p for p in dict.fromkeys(" ".join(p.split()) for p in parts) if len(p.split()) >= 2 and p != phrase
    ]


# ---------------------------------------------------------------------------------------------- sources


def core_terms(name: str = "core_terms.tsv") -> Iterator[TermSpec]:
    for line in resource_path(name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        text = fields[0].strip()
        kind = fields[1].strip() if len(fields) > 1 and fields[1].strip() else "condition"
        codes = tuple(c.strip() for c in fields[2].split(",") if c.strip()) if len(fields) > 2 else ()
        yield TermSpec(text, kind, codes, "core")


def _icd_entries() -> list[tuple[str, str, tuple[str, ...], bool]]:
    """(code, title, inclusion terms, is 7th-character expansion) of every ICD-10-CM entry worth a term."""
    from medcode.data.icd10cm import load_icd10cm

    out = []
    for entry in load_icd10cm().entries():
        if entry.chapter in ("20",) or entry.seventh_char is not None:
            continue
        out.append((entry.code, entry.title, tuple(entry.inclusion_terms), entry.billable))
    return out


def icd10cm_title_terms() -> Iterator[TermSpec]:
    for code, title, _inclusions, _billable in _icd_entries():
        if title.lower().startswith(_SKIP_TITLES):
            continue
        for phrase in clean_title(title):
            yield TermSpec(phrase, mention_type_of(code), (code,), "icd10cm")


def icd10cm_derived_terms() -> Iterator[TermSpec]:
    for code, title, inclusions, _billable in _icd_entries():
        kind = mention_type_of(code)
        for inclusion in inclusions:
            for phrase in clean_title(inclusion):
                yield TermSpec(phrase, kind, (code,), "icd10cm_inclusion")
        if title.lower().startswith(_SKIP_TITLES):
            continue
        for phrase in clean_title(title):
            for part in split_parts(phrase):
                yield TermSpec(part, kind, (code,), "icd10cm_part")


def _head_forms(main: str) -> list[str]:
    return [p.strip() for p in main.split(",") if p.strip()]


def _is_connector(text: str) -> bool:
    return f"{text.lower()} ".startswith(_CONNECTORS)


def _clean_sub(sub: str) -> list[str]:
    """Spellings of one index subterm: "rectum, rectal" -> ["rectum", "rectal"]; "with X, Y" kept whole."""
    text = _BRACKETS.sub("", _PARENS.sub("", sub))
    forms = [text] if _is_connector(text) else text.split(",")
    cleaned = [" ".join(_DROP_WORDS.sub(" ", f).split()) for f in forms]
    return [c for c in dict.fromkeys(cleaned) if c]


def index_phrases(path: Sequence[str], nonessential: str = "") -> list[str]:
    """Natural phrases of an index line: ("Bleeding", "rectum, rectal") -> "rectal bleeding", ..."""
    heads = _head_forms(_BRACKETS.sub("", path[0]))
    if not heads:
        return []
    head = heads[0]
    subs = [forms for forms in (_clean_sub(p) for p in path[1:]) if forms]
    if not subs:
        phrases = [head]
        for modifier in re.findall(r"\(([^()]*)\)", nonessential):
            modifier = " ".join(modifier.split())
            if not modifier or modifier.startswith("-") or "," in modifier:
                continue
            if _is_connector(modifier):
                phrases.append(f"{head} {modifier}")
            else:
                phrases.append(f"{modifier} {head}")
        return phrases
    rest = " ".join(forms[0] for forms in subs[1:])
    phrases = []
    for first in subs[0]:
        if _is_connector(first):
            phrases.append(f"{head} {first} {rest}")
        else:
            phrases.extend([f"{first} {head} {rest}", f"{head} {first} {rest}", f"{head} of {first} {rest}"])
            if len(heads) > 1 and not rest:
                phrases.append(f"{heads[1]} {first}")
    return list(dict.fromkeys(" ".join(p.split()) for p in phrases))


def index_terms(data_dir: Path, main_terms: bool) -> Iterator[TermSpec]:
    """Alphabetic index phrases: main terms only, or subterms only."""
    from medcode.data.icd10cm_index import load_index

    for term in load_index(data_dir):
        code = term.code_prefix
        if not code:
            continue
        if (term.level == 0) != main_terms:
            continue
        for phrase in index_phrases(term.path, term.nonessential):
            if len(phrase.split()) <= MAX_TERM_WORDS:
                yield TermSpec(phrase, mention_type_of(code), (code,), "icd10cm_index")


def disease_ontology_terms(data_dir: Path) -> Iterator[TermSpec]:
    from medcode.data.disease_ontology import load_disease_ontology

    for text, code in load_disease_ontology(data_dir).pairs():
        yield TermSpec(text, mention_type_of(code), (code,), "disease_ontology")


# ---------------------------------------------------------------------------------------------- CodiEsp


def document_ngrams(words: Sequence[str], stopwords: frozenset[str], max_n: int = 4) -> set[str]:
    """Word n-grams of a normal-form stream (barriers "\\x00" never inside), edges being content words."""
    grams: set[str] = set()
    count = len(words)
    for start in range(count):
        first = words[start]
        if not _content(first, stopwords):
            continue
        for n in range(1, max_n + 1):
            end = start + n
            if end > count or words[end - 1] == "\x00" or not words[end - 1][:1].isalnum():
                break
            if _content(words[end - 1], stopwords):
                grams.add(" ".join(words[start:end]))
    return grams


def _content(word: str, stopwords: frozenset[str]) -> bool:
    return word not in stopwords and sum(ch.isalpha() for ch in word) >= 3


def mine_codiesp(
    documents: Iterable[tuple[Sequence[str], Sequence[str]]],
    stopwords: frozenset[str],
    *,
    min_count: int = 3,
    min_precision: float = 0.5,
    min_lift: float = 5.0,
    max_codes: int = 3,
) -> list[tuple[str, tuple[str, ...]]]:
    """Phrases strongly associated with codes in coded notes: (normal-form words, gold codes) per note.

    An n-gram (1-4 words) is kept for a code when they co-occur in at least `min_count` notes, at least
    `min_precision` of the notes containing the n-gram carry the code, and the code is `min_lift` times
    more frequent in those notes than overall. Returns (n-gram key, codes best first).
    """
    doc_freq: Counter[str] = Counter()
    code_freq: Counter[str] = Counter()
    co: Counter[tuple[str, str]] = Counter()
    total = 0
    for words, codes in documents:
        total += 1
        grams = document_ngrams(words, stopwords)
        doc_freq.update(grams)
        unique_codes = set(codes)
        code_freq.update(unique_codes)
        for gram in grams:
            for code in unique_codes:
                co[(gram, code)] += 1
    by_gram: dict[str, list[tuple[float, int, str]]] = {}
    for (gram, code), count in co.items():
        if count < min_count:
            continue
        precision = count / doc_freq[gram]
        lift = precision / (code_freq[code] / total)
        if precision >= min_precision and lift >= min_lift:
            by_gram.setdefault(gram, []).append((precision, count, code))
    mined: list[tuple[str, tuple[str, ...]]] = []
    for gram, scored in sorted(by_gram.items()):
        scored.sort(reverse=True)
        mined.append((gram, tuple(code for _p, _c, code in scored[:max_codes])))
    return mined


def stems(words: Iterable[str], stopwords: frozenset[str]) -> set[str]:
    """Five-letter prefixes of the content words (a crude stemmer: "testicular" ~ "testicle")."""
    return {w[:5] for w in words if len(w) >= 4 and w.isalpha() and w not in stopwords and w not in _GENERIC}


_GENERIC = frozenset(
    [
        "disease",
        "disorder",
        "syndrome",
        "other",
        "unspecified",
        "specified",
        "condition",
        "abnormal",
        "finding",
        "type",
        "part",
        "site",
        "region",
        "with",
        "without",
        "right",
        "left",
        "bilateral",
        "acute",
        "chronic",
    ]
)


def select_mined(
    mined: Iterable[tuple[str, tuple[str, ...]]],
    existing: set[str],
    code_stems: dict[str, set[str]],
    blocked: set[str],
    stopwords: frozenset[str],
) -> list[TermSpec]:
    """Mined phrases worth a lexicon entry: codes for a key the lexicon has, or a new key whose words
    share a stem with the title or terms of its code (the association is then not a coincidence)."""
    specs: list[TermSpec] = []
    for key, codes in mined:
        words = key.split()
        if key in blocked or words[0] in _VERBS or words[-1] in _VERBS or words[0] in _CONTEXT_WORDS:
            continue
        if key not in existing and len(words) < 2:
            continue
        word_stems = stems(words, stopwords)
        related = tuple(c for c in codes if word_stems & code_stems.get(c, set()))
        if related:
            specs.append(TermSpec(key, mention_type_of(related[0]), related, "codiesp"))
    return specs


_CONTEXT_WORDS = frozenset(
    [
        "history",
        "antecedent",
        "previous",
        "prior",
        "known",
        "personal",
        "family",
        "suspected",
        "suspicion",
        "possible",
        "probable",
        "no",
        "without",
        "negative",
        "absence",
        "rule",
    ]
)
"""A mined phrase never starts with an assertion trigger: "history of hypertension" is "hypertension"."""
_VERBS = frozenset(
    [
        "show",
        "showed",
        "shows",
        "shown",
        "reveal",
        "revealed",
        "reveals",
        "performed",
        "perform",
        "was",
        "were",
        "is",
        "are",
        "evidenced",
        "evidence",
        "demonstrated",
        "demonstrate",
        "confirmed",
        "observed",
        "detected",
        "found",
        "done",
        "made",
        "carried",
    ]
)


def codiesp_terms(
    keyer: TermKeyer, data_dir: Path, earlier: Sequence[tuple[TermSpec, str]]
) -> list[TermSpec]:
    """Mine the CodiEsp train split (English text, D and P gold codes); `earlier` are the (term, key)
    pairs of the other sources (their keys and code titles filter the mined phrases)."""
    from medcode.data.codiesp import read_split

    encounters: list[Encounter] = read_split(data_dir, "train").encounters
    pipeline = build_pipeline(terms=[])
    documents: list[tuple[list[str], list[str]]] = []
    texts = [e.documents[0].text for e in encounters]
    for encounter, doc in zip(encounters, pipeline.nlp.pipe(texts, batch_size=32), strict=True):
        words = pipeline.matcher.words(doc)
        gold = encounter.gold
        codes = [*gold.diagnosis, *gold.procedure] if gold else []
        documents.append((words, codes))
    mined = mine_codiesp(documents, keyer.stopwords)
    code_stems: dict[str, set[str]] = {}
    mined_codes = {c for _key, codes in mined for c in codes}
    for spec, key in earlier:
        for code in spec.codes:
            if code in mined_codes:
                code_stems.setdefault(code, set()).update(stems(key.split(), keyer.stopwords))
    for code, title in _pcs_titles(data_dir, mined_codes).items():
        code_stems.setdefault(code, set()).update(stems(next(keyer.keys([title])).split(), keyer.stopwords))
    blocked = set(keyer.keys(read_word_list("anatomy.txt")))
    return select_mined(mined, {key for _spec, key in earlier}, code_stems, blocked, keyer.stopwords)


def _pcs_titles(data_dir: Path, codes: set[str]) -> dict[str, str]:
    """Titles of the ICD-10-PCS codes (full or partial) among `codes`, when the PCS files are present."""
    try:
        from medcode.data.icd10pcs import load_icd10pcs

        pcs = load_icd10pcs(data_dir)
    except (MedcodeError, OSError) as exc:
        logger.info("ICD-10-PCS titles unavailable for CodiEsp mining: %s", exc)
        return {}
    titles: dict[str, str] = {}
    for code in codes:
        if "." in code or len(code) < 4:
            continue
        title = pcs.title(code)
        if title:
            titles[code] = title
    return titles


# ---------------------------------------------------------------------------------------------- assembly


def default_term_specs(keyer: TermKeyer, data_dir: Path | None) -> Iterator[TermSpec]:
    """Every term of the full lexicon, highest priority first."""
    yield from core_terms()
    if data_dir is not None:
        yield from _optional("ICD-10-CM index", lambda: index_terms(data_dir, main_terms=True))
    yield from icd10cm_title_terms()
    if data_dir is not None:
        yield from _optional("ICD-10-CM index", lambda: index_terms(data_dir, main_terms=False))
    yield from icd10cm_derived_terms()
    if data_dir is not None:
        yield from _optional("Disease Ontology", lambda: disease_ontology_terms(data_dir))


def _optional(name: str, make: Callable[[], Iterable[TermSpec]]) -> list[TermSpec]:
    """A source that may be missing from MEDCODE_DATA_DIR: skipped with a log line, never fatal."""
    try:
        return list(make())
    except (MedcodeError, OSError) as exc:
        logger.info("lexicon source %s skipped: %s", name, exc)
        return []


def _source_fingerprint(data_dir: Path | None) -> str:
    digest = hashlib.sha256()
    digest.update(f"v{SOURCES_VERSION}".encode())
    digest.update(resources_fingerprint(RESOURCE_FILES).encode())
    from medcode.data import icd10cm

    tabular = icd10cm.tabular_path()
    digest.update(
        f"{icd10cm.VERSION}:{icd10cm.FORMAT_VERSION}:{tabular.name}:{tabular.stat().st_size}".encode()
    )
    if data_dir is not None:
        digest.update(str(data_dir.resolve()).encode())
        for pattern in (
            "icd10cm/fy2025_index/*Index.csv",
            "disease-ontology/*.tsv",
            "codiesp/train/train[DP].tsv",
        ):
            for path in sorted(data_dir.glob(pattern)):
                stat = path.stat()
                digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def lexicon_cache_path(data_dir: Path | None, cache_dir: Path) -> Path:
    return cache_dir / "text" / f"lexicon-{_source_fingerprint(data_dir)}.pkl"


def build_default_lexicon(keyer: TermKeyer, data_dir: Path | None) -> Lexicon:
    started = time.perf_counter()
    specs = list(default_term_specs(keyer, data_dir))
    keyed = list(zip(specs, keyer.keys(s.text for s in specs), strict=True))
    if data_dir is not None:
        mined = _optional("CodiEsp", lambda: codiesp_terms(keyer, data_dir, keyed))
        keyed.extend(zip(mined, keyer.keys(s.text for s in mined), strict=True))
        specs.extend(mined)
    lexicon = Lexicon.build_keyed(
        keyed,
        keyer,
        stop_keys=stop_keys(keyer),
        meta={"sources_version": SOURCES_VERSION, "data_dir": str(data_dir) if data_dir else None},
    )
    logger.info(
        "built the text lexicon: %d terms -> %d keys in %.1f s",
        len(specs),
        len(lexicon),
        time.perf_counter() - started,
    )
    return lexicon


def load_default_lexicon(keyer: TermKeyer, data_dir: Path | None, cache_dir: Path | None = None) -> Lexicon:
    """The full lexicon of `data_dir`'s sources (None or a missing folder: the packaged ones only), from
    `cache_dir` when it holds a current one, else built (and cached there when `cache_dir` is given)."""
    if data_dir is not None and not data_dir.is_dir():
        data_dir = None
    if cache_dir is None:
        return build_default_lexicon(keyer, data_dir)
    path = lexicon_cache_path(data_dir, cache_dir)
    cached = read_cache(path, Lexicon.read, "lexicon cache")
    if cached is not None:
        return cached
    lexicon = build_default_lexicon(keyer, data_dir)
    write_cache(path, lexicon.write, "lexicon cache")
    return lexicon


def full_pipeline(data_dir: Path | None, cache_dir: Path | None = None) -> TextPipeline:
    """The pipeline with the full lexicon of `data_dir`'s sources (see model.text.sources; None: the
    packaged sources only), read from or written to `cache_dir` when one is given."""
    started = time.perf_counter()
    nlp = make_nlp()
    lexicon = load_default_lexicon(make_keyer(nlp), data_dir, cache_dir)
    lexicon.meta["key_resources"] = resources_fingerprint(KEY_RESOURCES)
    logger.info("text pipeline ready: %d lexicon keys in %.2f s", len(lexicon), time.perf_counter() - started)
    return TextPipeline(nlp, lexicon)


_PIPELINE_LOCK = threading.Lock()


def get_pipeline(data_dir: Path | None, cache_dir: Path | None = None) -> TextPipeline:
    """`full_pipeline(data_dir, cache_dir)`, built once per process: for command-line tools and the coder
    UI, which read the settings themselves. Models never use it: a model carries its own pipeline.
    Concurrent first callers (the service's request threads) wait for one build instead of each building."""
    with _PIPELINE_LOCK:
        return _cached_pipeline(data_dir, cache_dir)


@lru_cache(maxsize=2)
def _cached_pipeline(data_dir: Path | None, cache_dir: Path | None) -> TextPipeline:
    return full_pipeline(data_dir, cache_dir)
