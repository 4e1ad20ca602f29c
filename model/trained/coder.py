"""The trained default model (preset "default"): candidates from the note's mentions (lexicon, lexical,
dense) and from document classifiers, ranked by a gradient-boosted ranker per task, calibrated on held-out
data, cut by tuned thresholds.

Inference only; `training.default` fits it. The pack carries everything that decides its output, so it
serves the same codes without the datasets folder: the text pipeline's lexicon, the code knowledge (index,
ontology, ICD-10-PCS names) and the code vectors of dense retrieval it was trained with, the ranker,
classifiers, calibration, thresholds, code priors and the coding-rules config (with any NCCI edits). Only
deployment choices (`model.runtime.Runtime`: threads, device, encoder precision) come from outside.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medcode.data.errors import ModelNotFoundError
from medcode.data.types import Encounter, Evidence, Result, Task
from medcode.model.calibration import Calibrator
from medcode.model.cancel import check_stop
from medcode.model.candidates.dense import (
    DenseCodeIndex,
    Encoder,
    as_stored,
    build_code_index,
    load_code_indexes,
    load_encoder,
    save_code_indexes,
)
from medcode.model.candidates.generate import (
    Candidate,
    CandidateGenerator,
    EncounterView,
    GeneratorConfig,
    attach_vectors,
    blocked,
    mention_evidence,
    read_encounter,
    sentence_evidence,
    view_texts,
)
from medcode.model.candidates.index_walk import SOURCE as WALK
from medcode.model.candidates.index_walk import IndexWalker
from medcode.model.candidates.lexical import lexical_indexes, save_lexical
from medcode.model.catalog import CM, PCS, CodeCatalog, Knowledge, build_catalog, code_set_version
from medcode.model.mentions import Extractor
from medcode.model.pack import (
    PackManifest,
    knowledge_digest,
    load_arrays,
    load_catalog_columns,
    load_index_tree,
    load_knowledge,
    load_object,
    save_catalog,
    save_knowledge,
    save_pack,
)
from medcode.model.result import RulesStep, Scored, build_result
from medcode.model.rules.pipeline import RulesConfig, build_rules, load_rules, save_rules
from medcode.model.runtime import Runtime
from medcode.model.text.pipeline import TextPipeline, load_pipeline, save_lexicon
from medcode.model.thresholds import TaskThresholds
from medcode.model.trained.classifier import DocScores, DocumentClassifier
from medcode.model.trained.features import (
    FEATURES,
    DocContext,
    candidate_features,
    code_similarities,
    doc_context,
    pack_columns,
)
from medcode.model.trained.memory import MemoryHit, SentenceMemory
from medcode.model.trained.numeric import TFIDF_KEYS, TreeRanker, pop_ranker, ranker_arrays

log = logging.getLogger(__name__)

PRESET = "default"
TASKS: tuple[Task, ...] = ("diagnosis", "procedure")
SYSTEM_OF: dict[str, str] = {"diagnosis": CM, "procedure": PCS}


@dataclass
class DefaultConfig:
    """Every option of the default preset (stored resolved in the pack)."""

    use_dense: bool = True
    index_walk: bool = True
    """Walk the Alphabetic Index for each mention when the pack carries the index tree."""
    dense_scope: str = "catalog"
    """Codes embedded for dense retrieval: "catalog" (ICD-10-CM minus external causes and laterality
    variants, PCS 4-character prefixes) or "training" (only codes seen in training: quick runs, tests)."""
    classifier: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    classifier_top_n: int = 60
    memory_top_n: int = 60
    memory_k: int = 8
    memory_min_score: float = 0.55
    max_candidates_per_task: int = 400
    folds: int = 5
    """K of the out-of-fold document classifiers, sentence memory and priors."""
    ranker_folds: int = 3
    """K of the out-of-fold ranker scores that fit calibration and thresholds."""
    ranker_max_iter: int = 300
    ranker_learning_rate: float = 0.06
    ranker_max_leaf_nodes: int = 31
    ranker_min_samples_leaf: int = 40
    ranker_l2_regularization: float = 30.0
    """Chosen by 3-fold out-of-fold MAP on CodiEsp train (0 -> 30: diagnosis 0.494 -> 0.497, procedure
    0.393 -> 0.420)."""
    calibration: str = "isotonic"
    target_precision: float = 0.95
    per_code_min_support: int = 25
    walk_floors: dict[str, float] = field(default_factory=dict)
    """Decision floor of a diagnosis code the Alphabetic Index walk reached and the tabular verified,
    by walk kind (`walk_kind`: "mention", "clause"): the share of such codes that were gold codes on the
    training notes (Wilson 95% lower bound; fitted by `training.default.fit_walk_floors`). A code the index
    and tabular vouch for is not dropped because the ranker learned a corpus that seldom codes it (US
    injury codes in translated case reports): it is suggested when its floor passes the decision threshold,
    with the ranker's confidence and place in the ranked list kept (so it routes to a coder, and ranking
    metrics do not move). Empty: no floor (packs fitted before it)."""
    fit_walk_floors: bool = False
    """Fit `walk_floors` at training time. Off by default: on CodiEsp dev (benchmarks/us_coding.md) the floors
    kept MAP (0.5193 vs 0.5194) and raised recall (0.426 vs 0.418) but cost micro precision (0.608 vs 0.645),
    for one more US must code (H66.92) where the injury rule already brings the walk's injury codes."""
    seed: int = 13

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DefaultConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Prepared:
    """An encounter read once: mentions, sentences, vectors and mention candidates (per system)."""

    view: EncounterView
    candidates: dict[tuple[str, str], Candidate]
    text: str
    document_vector: np.ndarray | None
    blocked: set[tuple[str, str]] = field(default_factory=set)
    """Codes whose only evidence is negated, family or hypothetical mentions: never candidates."""

    def excludes(self, system: str, code: str) -> bool:
        """True when a code without present evidence of its own must not be offered: it, or a sibling
        under the same parent (R10.812 next to a negated R10.819), is supported only by absent mentions."""
        family = sibling_prefix(code)
        return any(s == system and (c == code or (family and c.startswith(family))) for s, c in self.blocked)


WALK_KINDS = ("mention", "clause")


def walk_kind(view: EncounterView, cand: Candidate, skip: Collection[int] = ()) -> str | None:
    """How the Alphabetic Index walk vouches for a candidate: "mention" when a walk from a recognised
    mention used all of its words, "clause" when a walk from a stretch of the note applied a subterm (the
    walker keeps no other clause walk); None without such a walk from a present, certain, current mention
    (a walk that left words unused, or on a possible or historical mention, vouches for nothing). Walks
    from the mentions in `skip` are not counted."""
    kinds: set[str] = set()
    for hit in cand.present:
        if hit.source != WALK or hit.score < 0.999 or hit.mention in skip:
            continue
        assertion = view.mentions[hit.mention].assertion
        if not assertion.is_present or assertion.possible or assertion.historical:
            continue
        kinds.add("clause" if view.is_clause(hit.mention) else "mention")
    return "mention" if "mention" in kinds else ("clause" if kinds else None)


def sibling_prefix(code: str) -> str:
    """The parent prefix shared by a code's siblings ("R10.81" for R10.819, "R50" for R50.9); empty for a
    three-character category, whose siblings are unrelated conditions."""
    if len(code.replace(".", "")) <= 3:
        return ""
    return code[:-1].rstrip(".")


@dataclass
class TaskModel:
    """What one task (diagnosis or procedure) learned."""

    classifier: DocumentClassifier
    ranker: Any
    calibrator: Calibrator
    thresholds: TaskThresholds
    train_count: dict[str, int]
    n_train_docs: int
    memory: SentenceMemory | None = None
    columns: list[int] | None = None
    """The feature columns the ranker was trained on, for a pack older than the feature set (None: all)."""


class CodeResources:
    """The catalog, retrieval indexes and encoder a default model reads notes with.

    `dense` passes code vectors already computed (a loaded pack's); without it they are embedded now (at
    training time), through `cache_dir` when one is given, and rounded as the pack stores them. `pack`
    names the folder of a loaded pack, whose stored lexical indexes are read instead of built, and whose
    stored catalog `catalog` is: `knowledge` may then be None (read from `pack` when first asked for)."""

    def __init__(
        self,
        knowledge: Knowledge | None,
        config: DefaultConfig,
        extra_pcs_codes: Sequence[str] = (),
        training_codes: Sequence[str] = (),
        *,
        runtime: Runtime | None = None,
        dense: dict[str, DenseCodeIndex] | None = None,
        cache_dir: Path | None = None,
        encoder: Encoder | None = None,
        pack: Path | None = None,
        catalog: CodeCatalog | None = None,
    ) -> None:
        if knowledge is None and (catalog is None or pack is None):
            raise ValueError("CodeResources needs the knowledge, or a pack folder and its stored catalog")
        self._knowledge = knowledge
        self._pack = pack
        # what the stored catalog was checked against: the knowledge read later must be that one
        self._knowledge_sha256 = knowledge_digest(pack) if knowledge is None and pack is not None else None
        self.extra_pcs_codes = sorted(set(extra_pcs_codes))
        self.training_codes = sorted(set(training_codes))
        self.config = config
        self.catalog: CodeCatalog = catalog if catalog is not None else build_catalog(knowledge)
        self.lexical = lexical_indexes(self.catalog, pack)
        self.runtime = runtime or Runtime()
        self.encoder: Encoder | None = None
        if config.use_dense:
            self.encoder = encoder or Encoder.for_runtime(self.runtime)
        self.dense: dict[str, DenseCodeIndex] = {}
        if self.encoder is not None:
            self.dense = dense if dense is not None else self._dense_indexes(self.encoder, cache_dir)
        tree = knowledge.index_tree if knowledge is not None else load_index_tree(Path(str(pack)))
        self.generator = CandidateGenerator(
            self.catalog,
            self.lexical,
            self.dense,
            GeneratorConfig(**config.generator),
            IndexWalker(tree) if tree is not None and config.index_walk else None,
        )

    @property
    def knowledge(self) -> Knowledge:
        """The code knowledge the catalog was built from (a loaded pack's is read when first asked for)."""
        if self._knowledge is None:
            self._knowledge = load_knowledge(Path(str(self._pack)), self._knowledge_sha256)
        return self._knowledge

    def _dense_indexes(self, encoder: Encoder, cache_dir: Path | None) -> dict[str, DenseCodeIndex]:
        out: dict[str, DenseCodeIndex] = {}
        for system in self.catalog.systems():
            codes = self.catalog.codes(system)
            if self.config.dense_scope == "training":
                wanted = {*self.training_codes, *self.extra_pcs_codes}
                codes = [c for c in codes if c in wanted]
            elif system == PCS:
                wanted = set(self.extra_pcs_codes)
                codes = [c for c in codes if len(c) <= 4 or c in wanted]
            else:
                codes = [c for c in codes if dense_worthy(c, self.catalog.title(system, c))]
            codes = sorted(c for c in codes if self.catalog.title(system, c))
            if not codes:
                continue
            texts = [self.catalog.title(system, c) for c in codes]
            key = f"{self.catalog.fingerprint}-{system.replace(' ', '')}-{_digest(codes)}"
            out[system] = as_stored(build_code_index(codes, texts, key, encoder, cache_dir))
        return out

    def prepare(self, encounter: Encounter, extractor: Extractor) -> Prepared:
        return self._finish(read_encounter(encounter, extractor, self.encoder))

    def prepare_many(
        self, encounters: Sequence[Encounter], extractor: Extractor, progress: Any = None
    ) -> list[Prepared]:
        """`prepare` for many encounters, encoding all their texts in one pass (fuller, length-sorted
        batches: much faster than one encounter at a time)."""
        items = list(encounters)
        views = [
            read_encounter(e, extractor, None)
            for e in (progress(items, "reading notes") if progress else items)
        ]
        if self.encoder is not None:
            texts = [view_texts(v) for v in views]
            flat = [t for group in texts for t in group]
            vectors = self.encoder.encode(flat, progress=progress is not None)
            start = 0
            for view, group in zip(views, texts, strict=True):
                attach_vectors(view, vectors[start : start + len(group)])
                start += len(group)
        return [self._finish(v) for v in (progress(views, "candidates") if progress else views)]

    def _finish(self, view: EncounterView) -> Prepared:
        encounter = view.encounter
        doc_vector = None
        if view.sentence_vectors is not None and len(view.sentence_vectors):
            v = view.sentence_vectors.mean(axis=0)
            doc_vector = v / max(float(np.linalg.norm(v)), 1e-9)
        text = "\n".join(d.text for d in encounter.documents)
        generated = self.generator.generate(view)
        return Prepared(
            view,
            {k: c for k, c in generated.items() if not blocked(c)},
            text,
            doc_vector,
            {k for k, c in generated.items() if blocked(c)},
        )

    def code_vector(self, system: str, code: str) -> np.ndarray | None:
        index = self.dense.get(system)
        return index.code_vector(code) if index is not None else None


_LATERAL = re.compile(r"\b(left|right|bilateral)\b", re.IGNORECASE)


def dense_worthy(code: str, title: str) -> bool:
    """ICD-10-CM codes embedded for dense retrieval: not external causes (V-Y) and not the left/right/
    bilateral variants (dense similarity cannot tell sides apart; lexical retrieval and the rules can)."""
    return code[:1] not in "VWXY" and not _LATERAL.search(title)


def _digest(codes: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(codes).encode()).hexdigest()[:12]


class DefaultCoder:
    """The trained default model: its text pipeline, code resources, per-task models and rules."""

    preset = PRESET

    def __init__(
        self,
        resources: CodeResources,
        tasks: dict[str, TaskModel],
        config: DefaultConfig,
        *,
        pipeline: TextPipeline,
        version: str,
        rules: RulesConfig | None = None,
        metrics: dict[str, Any] | None = None,
        training_data: dict[str, Any] | None = None,
    ) -> None:
        self.resources = resources
        self.tasks = tasks
        self.config = config
        self.pipeline = pipeline
        self.rules_config = rules or RulesConfig()
        self._version = version
        self.metrics = metrics or {}
        self.training_data = training_data or {}
        self._rules: RulesStep | None = None
        self._rules_built = False
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return self._version

    @property
    def code_set_version(self) -> str:
        return code_set_version()

    @property
    def calibrated(self) -> bool:
        return True

    def thresholds(self, task: Task) -> TaskThresholds:
        model = self.tasks.get(task)
        return model.thresholds if model is not None else TaskThresholds(decision=1.01, auto_accept=1.01)

    @property
    def extractor(self) -> Extractor:
        return self.pipeline.extract

    @property
    def rules(self) -> RulesStep | None:
        """The coding-rules step of this model's rules config (built on first use; None when off)."""
        with self._lock:
            if not self._rules_built:
                self._rules = build_rules(self.rules_config)
                self._rules_built = True
            return self._rules

    def suggest(self, encounter: Encounter) -> Result:
        # BLAS on one thread: its idle threads spin after each product and slow the encoder's own threads
        # (about 40% on two cores); the products of one note are small
        with one_thread("blas"):
            prepared = self.resources.prepare(encounter, self.extractor)
            check_stop()  # between stages: a caller that gave up (model.cancel) frees the CPU here
            return self.suggest_prepared(prepared)

    def suggest_prepared(self, prepared: Prepared) -> Result:
        """Rank, calibrate and cut an encounter already read by `resources.prepare`."""
        encounter = prepared.view.encounter
        scored: list[Scored] = []
        for task, model in self.tasks.items():
            check_stop()
            scores = model.classifier.scores([prepared.text], _vec(prepared.document_vector))[0]
            memory = model.memory.query(prepared.view.sentence_vectors) if model.memory is not None else {}
            keys, x = task_rows(self.resources, prepared, task, model, scores, memory, self.config)
            if not keys:
                continue
            if model.columns is not None:
                x = x[:, model.columns]
            raw = ranker_scores(model.ranker, x)
            conf = model.calibrator(raw)
            scored.extend(self._scored(prepared, task, keys, conf, memory))
        return build_result(
            encounter,
            scored,
            self.thresholds,
            model_version=self.version,
            code_set_version=self.code_set_version,
            calibrated=True,
            rules=self.rules,
            mentions=prepared.view.pipeline_mentions,
        )

    def _scored(
        self,
        prepared: Prepared,
        task: str,
        keys: list[str],
        conf: np.ndarray,
        memory: dict[str, MemoryHit],
    ) -> list[Scored]:
        system = SYSTEM_OF[task]
        catalog = self.resources.catalog
        view = prepared.view
        out: list[Scored] = []
        floors = self.config.walk_floors if system == CM else {}
        # a floor fills a gap: mentions the ranker already codes above the decision threshold keep that code
        # alone ("HTN" -> I10, not a second code from the walk)
        covered: set[int] = set()
        if floors:
            decision = self.thresholds(task).decision  # type: ignore[arg-type]
            for code, c in zip(keys, conf, strict=True):
                scored_cand = prepared.candidates.get((system, code))
                if scored_cand is not None and c >= decision:
                    covered.update(h.mention for h in scored_cand.present)
        for code, c in zip(keys, conf, strict=True):
            cand = prepared.candidates.get((system, code))
            floor = 0.0
            if cand is not None and cand.present:
                evidence = mention_evidence(view, cand)
                best = cand.best()
                assert best is not None
                rationale = f"{best.source} match on '{view.mentions[best.mention].text}'"
                kind = walk_kind(view, cand, covered) if floors else None
                floor = floors.get(kind, 0.0) if kind is not None else 0.0
                if floor > c:
                    rationale += (
                        f"; index walk verified in the tabular: suggested on its floor {floor:.2f} (the share "
                        f"of {kind} walk codes that were right on the training notes), ranker confidence kept"
                    )
            elif code in memory:
                evidence = [sentence_evidence(view, memory[code].sentence)]
                rationale = f"sentence like coded training sentences (similarity {memory[code].score:.2f})"
            else:
                evidence = self._sentence_evidence(view, system, code)
                rationale = "document classifier; evidence is the best-matching sentence"
            if not evidence or (
                not (cand is not None and cand.present) and _touches_absent(view, evidence[0])
            ):
                continue
            out.append(
                Scored(
                    system,
                    code,
                    float(c),
                    evidence,
                    description=catalog.title(system, code),
                    rationale=rationale,
                    floor=floor if cand is not None and cand.present else 0.0,
                )
            )
        return out

    def _sentence_evidence(self, view: EncounterView, system: str, code: str) -> list[Evidence]:
        if not view.sentences:
            return []
        vector = self.resources.code_vector(system, code)
        if vector is not None and view.sentence_vectors is not None:
            return [sentence_evidence(view, int(np.argmax(view.sentence_vectors @ vector)))]
        title = self.resources.catalog.title(system, code)
        if title:
            from medcode.model.candidates.tokens import tokens

            words = set(tokens(title))
            overlap = [len(words & set(tokens(s.text))) for s in view.sentences]
            return [sentence_evidence(view, int(np.argmax(overlap)))]
        return [sentence_evidence(view, 0)]

    # persistence -----------------------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        arrays: dict[str, np.ndarray] = {}
        objects: dict[str, Any] = {}
        task_meta: dict[str, Any] = {}
        for task, model in self.tasks.items():
            a, o, meta = model.classifier.state()
            arrays.update({f"{task}.{k}": v for k, v in a.items()})
            objects.update({f"{task}.{k}": v for k, v in o.items()})
            arrays.update({f"{task}.{k}": v for k, v in ranker_arrays(model.ranker).items()})
            if not isinstance(model.ranker, TreeRanker):  # also as joblib: older medcode reads that
                objects[f"{task}.ranker"] = model.ranker
            task_meta[task] = {
                "classifier": meta,
                "train_count": model.train_count,
                "n_train_docs": model.n_train_docs,
            }
            if model.memory is not None:
                vectors, memory_meta = model.memory.state()
                arrays[f"{task}.memory_vectors"] = vectors
                task_meta[task]["memory"] = memory_meta
        config = self.config.to_json()
        # the features the rankers were trained on: an older pack's subset stays its own when saved again
        columns = next((m.columns for m in self.tasks.values() if m.columns is not None), None)
        config["features"] = list(FEATURES) if columns is None else [FEATURES[c] for c in columns]
        config["tasks"] = task_meta
        config["extra_pcs_codes"] = self.resources.extra_pcs_codes
        config["training_codes"] = self.resources.training_codes
        config["text"] = {"pipeline": self.pipeline.version, "lexicon_keys": len(self.pipeline.lexicon)}
        config["rules"] = self.rules_config.to_json()
        manifest = PackManifest.of(
            self,
            PRESET,
            thresholds={t: m.thresholds.to_json() for t, m in self.tasks.items()},
            calibration={t: m.calibrator.to_json() for t, m in self.tasks.items()},
            config=config,
        )
        knowledge = self.resources.knowledge

        def write_parts(folder: Path) -> None:
            save_knowledge(knowledge, folder)
            save_catalog(self.resources.catalog, folder)
            save_lexicon(self.pipeline, folder)
            save_lexical(self.resources.lexical, self.resources.catalog.fingerprint, folder)
            if self.resources.dense:
                save_code_indexes(self.resources.dense, folder, self.resources.encoder)
            save_rules(self.rules_config, folder)

        return save_pack(path, manifest, arrays=arrays, objects=objects, write_extra=write_parts)


def load_pack(path: Path, manifest: PackManifest, runtime: Runtime | None = None) -> DefaultCoder:
    """A default pack folder as a DefaultCoder: everything from the folder, nothing from the datasets
    folder or the environment; `runtime` says how this machine runs it."""
    path = Path(path)
    try:
        columns = pack_columns(manifest.config.get("features") or ())
    except ValueError:
        raise ModelNotFoundError(
            f"model pack {path} was trained with another feature set than this medcode computes; "
            "retrain it with `medcode train`"
        ) from None
    config = DefaultConfig.from_json(manifest.config)
    catalog = load_catalog_columns(path)  # None in packs saved before it was stored: built from the knowledge
    knowledge = load_knowledge(path) if catalog is None else None
    pipeline = load_pipeline(path)
    rules = load_rules(manifest.config.get("rules"), path)
    resources = CodeResources(
        knowledge,
        config,
        manifest.config.get("extra_pcs_codes", []),
        manifest.config.get("training_codes", []),
        runtime=runtime,
        dense=load_code_indexes(path) if config.use_dense else None,
        encoder=load_encoder(path, runtime or Runtime()) if config.use_dense else None,
        pack=path,
        catalog=catalog,
    )
    arrays = load_arrays(path)
    tasks: dict[str, TaskModel] = {}
    for task, meta in manifest.config.get("tasks", {}).items():
        prefix = f"{task}."
        own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        memory = None
        if "memory" in meta:
            memory = SentenceMemory.from_state(own.pop("memory_vectors"), meta["memory"])
        ranker = pop_ranker(own)  # arrays: no scikit-learn; an older pack's joblib object otherwise
        clf = DocumentClassifier.from_state(
            own,
            {}
            if all(k in own for k in TFIDF_KEYS)
            else {
                "vectorizer": load_object(path, f"{task}.vectorizer"),
                "train_tfidf": load_object(path, f"{task}.train_tfidf"),
            },
            meta["classifier"],
        )
        tasks[task] = TaskModel(
            classifier=clf,
            ranker=ranker if ranker is not None else load_object(path, f"{task}.ranker"),
            calibrator=Calibrator.from_json(manifest.calibration[task]),
            thresholds=TaskThresholds.from_json(manifest.thresholds[task]),
            train_count={str(k): int(v) for k, v in meta["train_count"].items()},
            n_train_docs=int(meta["n_train_docs"]),
            memory=memory,
            columns=columns,
        )
    return DefaultCoder(
        resources,
        tasks,
        config,
        pipeline=pipeline,
        rules=rules,
        version=manifest.version,
        metrics=manifest.metrics,
        training_data=manifest.training_data,
    )


# ---------------------------------------------------------------------------------------------- rows


class Priors(Protocol):
    train_count: dict[str, int]
    n_train_docs: int


def task_candidates(
    resources: CodeResources,
    prepared: Prepared,
    task: str,
    scores: DocScores,
    memory: dict[str, MemoryHit],
    config: DefaultConfig,
) -> list[Candidate]:
    """Mention candidates of the task's system, the classifiers' and the sentence memory's top codes —
    never a code whose only evidence is a negated, family or hypothetical mention."""
    system = SYSTEM_OF[task]
    found = {code: cand for (s, code), cand in prepared.candidates.items() if s == system}
    remembered = sorted(memory.items(), key=lambda kv: (-kv[1].score, kv[0]))[: config.memory_top_n]
    extra = [*scores.codes(config.classifier_top_n), *(code for code, _ in remembered)]
    for code in extra:
        if code not in found and not prepared.excludes(system, code):
            found[code] = Candidate(system, code, sources={"classifier"})
    cands = list(found.values())
    if len(cands) > config.max_candidates_per_task:
        cands.sort(key=lambda c: -_prefilter(c, scores, memory))
        cands = cands[: config.max_candidates_per_task]
    return cands


def _prefilter(cand: Candidate, scores: DocScores, memory: dict[str, MemoryHit]) -> float:
    best = max((h.score for h in cand.present), default=0.0)
    hit = memory.get(cand.code)
    return (
        best
        + scores.linear.get(cand.code, 0.0)
        + scores.knn_tfidf.get(cand.code, 0.0)
        + (hit.score if hit else 0.0)
        + 0.05 * len(cand.present)
    )


def task_rows(
    resources: CodeResources,
    prepared: Prepared,
    task: str,
    priors: Priors,
    scores: DocScores,
    memory: dict[str, MemoryHit],
    config: DefaultConfig,
) -> tuple[list[str], np.ndarray]:
    """(codes, feature matrix) of one encounter's candidates for one task."""
    system = SYSTEM_OF[task]
    ctx: DocContext = doc_context(scores, prepared.document_vector, memory)
    cands = task_candidates(resources, prepared, task, scores, memory, config)
    similarities = code_similarities(
        prepared.view, ctx, [resources.code_vector(system, cand.code) for cand in cands]
    )
    rows = [
        candidate_features(
            prepared.view,
            cand,
            resources.catalog.info(system, cand.code),
            ctx,
            priors.train_count,
            priors.n_train_docs,
            similarity,
        )
        for cand, similarity in zip(cands, similarities, strict=True)
    ]
    x = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURES))
    return [c.code for c in cands], x


def _touches_absent(view: EncounterView, evidence: Evidence) -> bool:
    """True when the evidence span holds a negated, family or hypothetical mention: a code offered on
    sentence evidence alone (classifier, sentence memory) may be that absent condition, so it is dropped."""
    return any(
        not m.assertion.is_present
        for m in view.mentions
        if m.document_id == evidence.document_id and evidence.start <= m.start and m.end <= evidence.end
    )


def ranker_scores(ranker: Any, x: np.ndarray) -> np.ndarray:
    """P(positive) from the ranker, on one thread: the histogram boosting predictor's per-tree thread
    start-up costs far more than the work on a few hundred rows (seconds instead of milliseconds on a
    busy machine)."""
    if len(x) == 0:
        return np.zeros(0)
    with one_thread("openmp"):
        return np.asarray(ranker.predict_proba(x)[:, 1])


def _thread_pools() -> Any:
    """The native thread pools of the libraries this process has loaded (numpy's BLAS; torch's and
    scikit-learn's OpenMP runtimes once they are imported, which suggest with a numpy-only pack never
    does). A controller only knows the libraries loaded before it: one per set of loaded libraries."""
    return _controller(tuple(name in sys.modules for name in ("torch", "sklearn.ensemble")))


@lru_cache(maxsize=4)
def _controller(loaded: tuple[bool, ...]) -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_thread(api: str) -> Any:
    """A context in which the native thread pools of `api` ("blas", "openmp") run one thread. The
    controller is found once: looking the libraries up costs milliseconds per call."""
    return _thread_pools().limit(limits=1, user_api=api)


def _vec(v: np.ndarray | None) -> np.ndarray | None:
    return None if v is None else v[None, :]
