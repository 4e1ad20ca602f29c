"""Candidate generation: per mention, the codes that may name it, with the evidence and raw signals.

Every mention of the encounter is looked up (lexicon concepts from the text pipeline, lexical retrieval,
dense retrieval when an encoder is configured, and, for pairs of conditions in one sentence, lexical
retrieval of the pair for combination codes). Hits from present mentions support a code; hits from
negated, family or hypothetical mentions never do: they are recorded (as `absent`) so that a code whose
only evidence is such a mention can be dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from medcode.data.types import Encounter, Evidence, Mention
from medcode.model.cancel import check_stop
from medcode.model.candidates.dense import DenseCodeIndex, Encoder
from medcode.model.candidates.index_walk import SOURCE as WALK
from medcode.model.candidates.index_walk import IndexWalker
from medcode.model.candidates.lexical import LexicalIndex
from medcode.model.candidates.related import SOURCE as RELATED
from medcode.model.candidates.related import relatives, seeds_of
from medcode.model.catalog import CM, PCS, CodeCatalog
from medcode.model.mentions import Extractor, Sentence, clause_mentions, split_sentences

Key = tuple[str, str]
"""(system, code)"""

SECTIONS = (
    "unknown",
    "chief_complaint",
    "hpi",
    "past_medical_history",
    "past_surgical_history",
    "family_history",
    "social_history",
    "medications",
    "allergies",
    "review_of_systems",
    "physical_exam",
    "labs",
    "imaging",
    "assessment",
    "plan",
    "procedures",
    "discharge_diagnoses",
    "hospital_course",
)
MENTION_TYPES = ("condition", "sign_symptom", "procedure", "injury", "anatomy", "other")
SOURCES = ("lexicon", "lexical", "pair", "history", "dense", "index_walk", "related")
_SEED_SOURCES = frozenset({"lexicon", "lexical", "dense", "index_walk"})


@dataclass
class GeneratorConfig:
    """How many codes each retrieval source proposes per mention, and the least score it keeps."""

    lexical_k: int = 10
    """Codes the lexical (word-match) index retrieves per mention."""
    lexical_min: float = 0.3
    """Least lexical match score (0-1) a retrieved code needs; also for the history-of and pair queries."""
    dense_k: int = 10
    """Codes the dense (sentence-encoder) index retrieves per mention."""
    dense_min: float = 0.45
    """Least cosine similarity a dense hit needs."""
    pair_k: int = 5
    """Codes retrieved per "personal history of X" query and per "X with Y" pair query (combination codes)."""
    max_pairs_per_sentence: int = 6
    """Pairs of present conditions of one sentence queried as combinations, at most."""
    block_lexical_k: int = 3
    """A mention that is not present (negated, family, hypothetical) keeps its top lexical hits as absent
    evidence: a code whose only evidence is absent is blocked (`blocked`)."""
    block_lexical_min: float = 0.6
    """Least lexical score of such an absent hit."""
    block_dense_k: int = 2
    """The same for dense hits: top hits of a mention that is not present kept as absent evidence."""
    block_dense_min: float = 0.75
    """Least cosine similarity of such an absent dense hit."""
    related: bool = False
    """Add the tabular relatives (children, siblings, parent) of each present mention's strongest hits as
    "related" hits (`model.candidates.related`); off in packs saved before the option."""
    related_seeds: int = 2
    """Seeds per mention: its best codes from lexicon, lexical, dense and index-walk hits."""
    related_seed_min: float = 0.5
    """Least hit score (0-1) a code needs to be a seed."""
    related_per_seed: int = 8
    """Relatives kept per seed, best own lexical match with the mention first."""
    related_min: float = 0.0
    """Least own lexical match a relative needs (0: any relative within `related_per_seed`)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One mention retrieving one code."""

    mention: int
    source: str
    score: float
    query_coverage: float = 1.0
    term_coverage: float = 1.0
    rank: int = 0


@dataclass
class Candidate:
    system: str
    code: str
    present: list[Hit] = field(default_factory=list)
    absent: list[Hit] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    """Where the candidate came from besides mentions ("classifier", "knn", ...)."""

    @property
    def key(self) -> Key:
        return (self.system, self.code)

    def best(self, source: str | None = None) -> Hit | None:
        hits = [h for h in self.present if source is None or h.source == source]
        return max(hits, key=lambda h: (h.score, h.query_coverage)) if hits else None


@dataclass
class EncounterView:
    """An encounter read once: its mentions and sentences (and their vectors when dense is on)."""

    encounter: Encounter
    mentions: list[Mention]
    sentences: list[Sentence]
    mention_vectors: np.ndarray | None = None
    """Vectors of the text pipeline's mentions (the first `n_pipeline` mentions)."""
    sentence_vectors: np.ndarray | None = None
    doc_lengths: dict[str, int] = field(default_factory=dict)
    n_pipeline: int = -1
    """Mentions before this index come from the text pipeline; after it, clause mentions (-1: all)."""

    @property
    def pipeline_mentions(self) -> list[Mention]:
        return self.mentions if self.n_pipeline < 0 else self.mentions[: self.n_pipeline]

    def is_clause(self, mention: int) -> bool:
        return 0 <= self.n_pipeline <= mention

    def present(self) -> list[int]:
        return [i for i, m in enumerate(self.mentions) if m.assertion.is_present]

    def evidence_of(self, mention: int) -> Evidence:
        m = self.mentions[mention]
        return Evidence(document_id=m.document_id, start=m.start, end=m.end, text=m.text)

    def sentence_of(self, mention: int) -> int:
        m = self.mentions[mention]
        for i, s in enumerate(self.sentences):
            if s.document_id == m.document_id and s.start <= m.start < max(s.end, s.start + 1):
                return i
        return -1


def read_encounter(
    encounter: Encounter, extractor: Extractor, encoder: Encoder | None = None, clauses: bool = True
) -> EncounterView:
    """Mentions (the pipeline's, then clause mentions), sentences, and their vectors."""
    mentions: list[Mention] = []
    extra: list[Mention] = []
    sentences: list[Sentence] = []
    for doc in encounter.documents:
        check_stop()  # between documents: a caller that gave up (model.cancel) frees the CPU here
        found = [m for m in extractor(doc.text, doc.document_id) if m.end > m.start]
        mentions.extend(found)
        if clauses:
            extra.extend(clause_candidates(doc.text, doc.document_id, found))
        sentences.extend(split_sentences(doc.text, doc.document_id))
    view = EncounterView(
        encounter=encounter,
        mentions=[*mentions, *extra],
        sentences=sentences,
        doc_lengths={d.document_id: len(d.text) for d in encounter.documents},
        n_pipeline=len(mentions),
    )
    if encoder is not None:
        attach_vectors(view, encoder.encode(view_texts(view)))
    return view


def view_texts(view: EncounterView) -> list[str]:
    """The texts a view is encoded with: its pipeline mentions' queries, then its sentences."""
    return [mention_query(m) for m in view.pipeline_mentions] + [s.text for s in view.sentences]


def attach_vectors(view: EncounterView, vectors: np.ndarray) -> None:
    n = len(view.pipeline_mentions)
    view.mention_vectors = vectors[:n]
    view.sentence_vectors = vectors[n:]


def clause_candidates(text: str, document_id: str, pipeline: Sequence[Mention]) -> list[Mention]:
    """Clauses of the note as extra lexical queries (type "other", attribute source=clause).

    A clause is absent (never supports a code) when its own cues say so, or when it holds mentions of the
    pipeline that are all negated, family or hypothetical; it then takes their assertion.
    """
    out: list[Mention] = []
    for clause in clause_mentions(text, document_id):
        inside = [m for m in pipeline if m.start < clause.end and clause.start < m.end]
        assertion = clause.assertion
        if inside and not any(m.assertion.is_present for m in inside):
            first = inside[0].assertion
            assertion = assertion.model_copy(
                update={
                    "negated": assertion.negated or first.negated,
                    "family": assertion.family or first.family,
                    "hypothetical": assertion.hypothetical or first.hypothetical,
                }
            )
        out.append(
            clause.model_copy(
                update={"type": "other", "assertion": assertion, "attributes": {"source": "clause"}}
            )
        )
    return out


def mention_query(mention: Mention) -> str:
    """The text a mention is looked up with: its words plus modifiers not already in them."""
    extra = [
        v
        for k, v in sorted(mention.attributes.items())
        if k != "source" and v and v.lower() not in mention.text.lower()
    ]
    return " ".join([mention.text, *extra]) if extra else mention.text


def systems_for(mention: Mention) -> tuple[str, ...]:
    if mention.type == "procedure":
        return (PCS,)
    if mention.type == "anatomy":
        return ()
    if mention.type == "other":
        return (CM, PCS)
    return (CM,)


class CandidateGenerator:
    """Turns an EncounterView into candidates keyed by (system, code)."""

    def __init__(
        self,
        catalog: CodeCatalog,
        lexical: dict[str, LexicalIndex],
        dense: dict[str, DenseCodeIndex] | None = None,
        config: GeneratorConfig | None = None,
        walker: IndexWalker | None = None,
    ) -> None:
        self.catalog = catalog
        self.lexical = lexical
        self.dense = dense or {}
        self.config = config or GeneratorConfig()
        self.walker = walker
        """The Alphabetic Index walk (None: a pack without the index tree)."""

    def system_of_concept(self, code: str) -> str | None:
        if (CM, code) in self.catalog:
            return CM
        if (PCS, code) in self.catalog:
            return PCS
        return None

    def generate(self, view: EncounterView) -> dict[Key, Candidate]:
        cfg = self.config
        found: dict[Key, Candidate] = {}

        def add(system: str, code: str, hit: Hit, present: bool) -> None:
            cand = found.get((system, code))
            if cand is None:
                cand = found[(system, code)] = Candidate(system, code)
            (cand.present if present else cand.absent).append(hit)

        mentions = view.mentions
        present_flags = [m.assertion.is_present for m in mentions]
        # lexicon concepts, scored against their mention (all mentions of a system at once)
        asks: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)
        for i, m in enumerate(mentions):
            by_system: dict[str, list[str]] = defaultdict(list)
            for code in dict.fromkeys(m.concepts):
                system = self.system_of_concept(code)
                if system is not None:
                    by_system[system].append(code)
            for system, codes in by_system.items():
                asks[system].append((i, codes))
        for system, wanted in asks.items():
            index = self.lexical.get(system)
            matches = (
                index.score_many([(mention_query(mentions[i]), codes) for i, codes in wanted])
                if index is not None
                else [{} for _ in wanted]
            )
            for (i, codes), match in zip(wanted, matches, strict=True):
                ranked = sorted(codes, key=lambda c: -(match[c].score if c in match else 0.0))
                for rank, code in enumerate(ranked):
                    h = match.get(code)
                    hit = (
                        Hit(i, "lexicon", h.score, h.query_coverage, h.term_coverage, rank)
                        if h is not None
                        else Hit(i, "lexicon", 0.0, 0.0, 0.0, rank)
                    )
                    add(system, code, hit, present_flags[i])
        # the Alphabetic Index walk, per pipeline mention (codes verified in the tabular)
        if self.walker is not None and CM in self.lexical:
            self._index_walk(view, add)
        # lexical retrieval, per system
        for system, index in self.lexical.items():
            ids = [i for i, m in enumerate(mentions) if system in systems_for(m)]
            queries = [mention_query(mentions[i]) for i in ids]
            for i, hits in zip(
                ids, index.search(queries, k=cfg.lexical_k, min_score=cfg.lexical_min), strict=True
            ):
                for rank, h in enumerate(hits):
                    hit = Hit(i, "lexical", h.score, h.query_coverage, h.term_coverage, rank)
                    if present_flags[i]:
                        add(system, h.code, hit, True)
                    elif rank < cfg.block_lexical_k and h.score >= cfg.block_lexical_min:
                        add(system, h.code, hit, False)
            if system == CM:
                self._history_and_pairs(view, index, [i for i in ids if not view.is_clause(i)], add)
        # dense retrieval
        if view.mention_vectors is not None:
            for system, dindex in self.dense.items():
                ids = [
                    i
                    for i, m in enumerate(mentions)
                    if i < len(view.mention_vectors) and not view.is_clause(i) and system in systems_for(m)
                ]
                if not ids:
                    continue
                results = dindex.search(view.mention_vectors[ids], k=cfg.dense_k)
                for i, dense_hits in zip(ids, results, strict=True):
                    for rank, dh in enumerate(dense_hits):
                        if dh.score < cfg.dense_min:
                            break
                        hit = Hit(i, "dense", dh.score, rank=rank)
                        if present_flags[i]:
                            add(system, dh.code, hit, True)
                        elif rank < cfg.block_dense_k and dh.score >= cfg.block_dense_min:
                            add(system, dh.code, hit, False)
        if cfg.related:
            self._related(view, found, add)
        return found

    def _related(self, view: EncounterView, found: dict[Key, Candidate], add) -> None:  # type: ignore[no-untyped-def]
        """Relatives of each present pipeline mention's seeds, scored against the mention's query."""
        cfg = self.config
        mentions = view.mentions
        own: dict[tuple[int, str], list[tuple[str, float]]] = defaultdict(list)
        for (system, code), cand in found.items():
            for h in cand.present:
                if h.source in _SEED_SOURCES and not view.is_clause(h.mention):
                    own[(h.mention, system)].append((code, h.score))
        asks: dict[str, list[tuple[int, float, dict[str, int]]]] = defaultdict(list)
        for (i, system), hits in sorted(own.items()):
            if not mentions[i].assertion.is_present or system not in self.lexical:
                continue
            have = {code for code, _ in hits}
            for seed, seed_score in seeds_of(hits, cfg.related_seeds, cfg.related_seed_min):
                near = {c: r for c, r in relatives(self.catalog, system, seed).items() if c not in have}
                if near:
                    asks[system].append((i, seed_score, near))
        for system, wanted in asks.items():
            index = self.lexical[system]
            matches = index.score_many([(mention_query(mentions[i]), list(near)) for i, _, near in wanted])
            for (i, seed_score, near), match in zip(wanted, matches, strict=True):
                scored = sorted(
                    near,
                    key=lambda c: (-(match[c].score if c in match else 0.0), near[c], c),
                )
                for code in scored[: cfg.related_per_seed]:
                    lexical_hit = match.get(code)
                    score = lexical_hit.score if lexical_hit is not None else 0.0
                    if score < cfg.related_min:
                        continue
                    qcov = lexical_hit.query_coverage if lexical_hit is not None else 0.0
                    add(system, code, Hit(i, RELATED, score, qcov, seed_score, near[code]), True)

    def _index_walk(self, view: EncounterView, add) -> None:  # type: ignore[no-untyped-def]
        assert self.walker is not None
        mentions = view.mentions
        sentence_text: dict[int, str] = {}
        texts = []
        for i in range(len(mentions)):
            s = view.sentence_of(i)
            if s not in sentence_text:
                sentence_text[s] = view.sentences[s].text if s >= 0 else ""
            texts.append(sentence_text[s])
        for wc in self.walker.walk_mentions(mentions, texts, view.n_pipeline):
            if (CM, wc.code) not in self.catalog:
                continue
            hit = Hit(wc.mention, WALK, wc.score, 1.0, wc.depth_share, wc.rank)
            add(CM, wc.code, hit, mentions[wc.mention].assertion.is_present)

    def _history_and_pairs(self, view: EncounterView, index: LexicalIndex, ids: Sequence[int], add) -> None:  # type: ignore[no-untyped-def]
        cfg = self.config
        mentions = view.mentions
        # history-of: look up "personal history of X" for present historical mentions
        hist = [i for i in ids if mentions[i].assertion.is_present and mentions[i].assertion.historical]
        if hist:
            queries = [f"personal history of {mentions[i].text}" for i in hist]
            for i, hits in zip(
                hist, index.search(queries, k=cfg.pair_k, min_score=cfg.lexical_min), strict=True
            ):
                for rank, h in enumerate(hits):
                    add(CM, h.code, Hit(i, "history", h.score, h.query_coverage, h.term_coverage, rank), True)
        # pairs of present conditions within one sentence: combination codes
        by_sentence: dict[int, list[int]] = defaultdict(list)
        for i in ids:
            m = mentions[i]
            if m.assertion.is_present and m.type in ("condition", "injury", "other", "sign_symptom"):
                by_sentence[view.sentence_of(i)].append(i)
        pairs: list[tuple[int, int]] = []
        for members in by_sentence.values():
            local = [(a, b) for x, a in enumerate(members) for b in members[x + 1 :]]
            pairs.extend(local[: cfg.max_pairs_per_sentence])
        if pairs:
            queries = [f"{mentions[a].text} with {mentions[b].text}" for a, b in pairs]
            for (a, _b), hits in zip(
                pairs, index.search(queries, k=cfg.pair_k, min_score=cfg.lexical_min), strict=True
            ):
                for rank, h in enumerate(hits):
                    if h.query_coverage >= 0.6:
                        add(
                            CM, h.code, Hit(a, "pair", h.score, h.query_coverage, h.term_coverage, rank), True
                        )


def blocked(candidate: Candidate) -> bool:
    """True when the code's only evidence is negated, family or hypothetical mentions."""
    return not candidate.present and bool(candidate.absent)


def mention_evidence(view: EncounterView, candidate: Candidate, limit: int = 3) -> list[Evidence]:
    """Spans of the present mentions supporting a code, best first, one per mention."""
    ranked = sorted(candidate.present, key=lambda h: (-h.score, -h.query_coverage, h.mention))
    out: list[Evidence] = []
    seen: set[int] = set()
    for hit in ranked:
        if hit.mention in seen:
            continue
        seen.add(hit.mention)
        out.append(view.evidence_of(hit.mention))
        if len(out) >= limit:
            break
    return out


def sentence_evidence(view: EncounterView, sentence: int) -> Evidence:
    s = view.sentences[sentence]
    return Evidence(document_id=s.document_id, start=s.start, end=s.end, text=s.text)


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
