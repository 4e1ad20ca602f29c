"""The built-in model (preset "builtin"): knowledge-based, no labelled data, no training.

Candidates come from the present mentions of the note (the text pipeline's lexicon concepts and lexical
retrieval over ICD-10-CM titles, inclusion terms, index entries and synonyms; ICD-10-PCS when a PCS code
list is configured) and are scored by how well the mention matches the code's name. Each present mention
suggests at most its best code; the others remain ranked alternatives. Confidence is not calibrated and
every result routes to review with the reason `cold_start_model`.

Built from a datasets folder the caller names (`BuiltinCoder(data_dir=...)`: the ICD-10-CM index, Disease
Ontology and ICD-10-PCS when present; None: the packaged ICD-10-CM only). Its pack carries the code
knowledge, the text pipeline's lexicon and the rules config, so a loaded builtin pack reads no data folder.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from medcode.data.types import Encounter, Result, Task
from medcode.model.cancel import check_stop
from medcode.model.candidates.generate import (
    Candidate,
    CandidateGenerator,
    EncounterView,
    GeneratorConfig,
    Hit,
    blocked,
    mention_evidence,
    read_encounter,
)
from medcode.model.candidates.index_walk import SOURCE as WALK
from medcode.model.candidates.index_walk import IndexWalker
from medcode.model.candidates.lexical import lexical_indexes
from medcode.model.catalog import CodeCatalog, Knowledge, build_catalog, code_set_version, knowledge_from
from medcode.model.pack import KNOWLEDGE_FILE, PackManifest, load_knowledge, save_knowledge, save_pack
from medcode.model.result import RulesStep, Scored, build_result
from medcode.model.rules.pipeline import RulesConfig, build_rules, load_rules, save_rules
from medcode.model.runtime import Runtime
from medcode.model.text.pipeline import LEXICON_FILE, TextPipeline, load_pipeline, save_lexicon
from medcode.model.text.sources import full_pipeline
from medcode.model.thresholds import TaskThresholds

log = logging.getLogger(__name__)

PRESET = "builtin"
VERSION = "builtin-1"


@dataclass
class BuiltinConfig:
    """The builtin coder's scores (0-1) and the factors that scale them; saved in the pack."""

    decision_threshold: float = 0.75
    """Least score of a suggested code (there is no auto-accept: the builtin coder is not calibrated)."""
    lexicon_score: float = 0.9
    """A lexicon concept's score when its name matches the mention fully (70% of it for no word match)."""
    clause_factor: float = 0.98
    """Clause hits compete with the pipeline mention they contain, slightly behind on ties."""
    clause_min: float = 0.85
    """A clause holding no pipeline mention suggests its best code only from this score."""
    out_of_context_factor: float = 0.8
    """Pregnancy (O) and perinatal (P) codes when the note and patient give no such context."""
    non_billable_factor: float = 0.85
    """A code that is not billable (a category with children), unless the index walk reached it."""
    historical_factor: float = 0.6
    """A hit from a mention the note gives as history (not the "personal history of" query's own hits)."""
    possible_factor: float = 0.7
    """A hit from a mention the note gives as possible (suspected, rule out)."""
    index_walk: bool = True
    """Walk the Alphabetic Index for each mention (when the knowledge holds the index tree)."""
    walk_score: float = 1.0
    """A walk hit's score at full depth and full use of the mention's words (like `lexicon_score`)."""
    repeat_bonus: float = 0.15
    """Share of the remaining headroom added per extra supporting mention (at most two)."""
    generator: dict[str, Any] | None = None
    """Keyword arguments of the candidate generator's `GeneratorConfig` (None: its defaults)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuiltinConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class BuiltinCoder:
    """Knowledge-based coder: ICD-10-CM (and PCS) names matched against the note's present mentions."""

    preset = PRESET

    def __init__(
        self,
        knowledge: Knowledge | None = None,
        pipeline: TextPipeline | None = None,
        config: BuiltinConfig | None = None,
        *,
        data_dir: Path | None = None,
        cache_dir: Path | None = None,
        rules: RulesConfig | None = None,
    ) -> None:
        """`knowledge` and `pipeline` default to what `data_dir` offers (read on first use; `cache_dir`
        keeps the compiled lexicon between runs)."""
        self.config = config or BuiltinConfig()
        self.metrics: dict[str, Any] = {}
        self.training_data: dict[str, Any] = {"fingerprint": None, "note": "no labelled data"}
        self.rules_config = rules or RulesConfig()
        self._data_dir = data_dir
        self._cache_dir = cache_dir
        self._knowledge = knowledge
        self._catalog: CodeCatalog | None = None
        self._pipeline = pipeline
        self._generator: CandidateGenerator | None = None
        self._rules: RulesStep | None = None
        self._lock = threading.Lock()

    # Coder protocol ------------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return VERSION

    @property
    def code_set_version(self) -> str:
        return code_set_version()

    @property
    def calibrated(self) -> bool:
        return False

    def thresholds(self, task: Task) -> TaskThresholds:
        return TaskThresholds(decision=self.config.decision_threshold, auto_accept=1.01)

    def suggest(self, encounter: Encounter) -> Result:
        generator, pipeline, rules = self._parts()
        view = read_encounter(encounter, pipeline.extract)
        check_stop()  # between stages: a caller that gave up (model.cancel) frees the CPU here
        candidates = generator.generate(view)
        check_stop()
        scored = self.score(view, list(candidates.values()))
        check_stop()
        return build_result(
            encounter,
            scored,
            self.thresholds,
            model_version=self.version,
            code_set_version=self.code_set_version,
            calibrated=False,
            rules=rules,
            mentions=view.pipeline_mentions,
        )

    # scoring -------------------------------------------------------------------------------------------
    def hit_score(self, view: EncounterView, hit: Hit) -> float:
        cfg = self.config
        if hit.source == WALK:
            # the index vouches for the code; the deeper the walk and the more of the mention it used,
            # the surer (term_coverage holds the depth share, score the share of the mention's words)
            score = cfg.walk_score * (0.6 + 0.25 * hit.score + 0.15 * hit.term_coverage)
        elif hit.source == "lexicon":
            # the lexicon vouches for the code; how well its name matches the mention orders the concepts
            score = cfg.lexicon_score * (0.7 + 0.3 * hit.score * (0.8 + 0.2 * hit.term_coverage))
        else:
            score = hit.score * (0.4 + 0.6 * hit.query_coverage) * (0.8 + 0.2 * hit.term_coverage)
        assertion = view.mentions[hit.mention].assertion
        if assertion.historical and hit.source != "history":
            score *= cfg.historical_factor
        if assertion.possible:
            score *= cfg.possible_factor
        return score

    def score(self, view: EncounterView, candidates: list[Candidate]) -> list[Scored]:
        catalog, cfg = self.catalog, self.config
        owners = _clause_owners(view)
        context = _encounter_context(view)
        # per competition slot (a pipeline mention, or a clause holding none): the best (score, tiebreak, code)
        best_of_slot: dict[tuple[int, str], tuple[float, tuple[int, int, int], str]] = {}
        scores: dict[tuple[str, str], float] = {}
        for cand in candidates:
            if blocked(cand) or not cand.present:
                continue
            info = catalog.info(cand.system, cand.code)
            # a walk code lacking only its 7th character is complete for the index (the rules add it)
            complete = info is None or info.billable or any(h.source == WALK for h in cand.present)
            factor = 1.0 if complete else cfg.non_billable_factor
            factor *= _context_factor(cand.code, context, cfg)
            by_mention: dict[int, float] = {}
            for hit in cand.present:
                s = self.hit_score(view, hit) * factor
                by_mention[hit.mention] = max(by_mention.get(hit.mention, 0.0), s)
                if view.is_clause(hit.mention):
                    owned, overlaps = owners.get(hit.mention, ([], False))
                    slots = [(m, s * cfg.clause_factor) for m in owned]
                    if not overlaps and s >= cfg.clause_min:
                        slots = [(hit.mention, s)]
                else:
                    slots = [(hit.mention, s)]
                for slot, value in slots:
                    key = (slot, cand.system)
                    entry = (value, _tiebreak(info), cand.code)
                    if key not in best_of_slot or entry[:2] > best_of_slot[key][:2]:
                        best_of_slot[key] = entry
            ranked = sorted(_distinct_spans(view, by_mention).values(), reverse=True)
            score = ranked[0]
            for _ in ranked[1:3]:
                score += (1.0 - score) * cfg.repeat_bonus
            scores[cand.key] = score
        best_codes = {(system, code) for (_, system), (_, _, code) in best_of_slot.items()}
        out: list[Scored] = []
        for cand in candidates:
            if cand.key not in scores:
                continue
            best = cand.best()
            out.append(
                Scored(
                    system=cand.system,
                    code=cand.code,
                    confidence=round(scores[cand.key], 6),
                    evidence=mention_evidence(view, cand),
                    description=catalog.title(cand.system, cand.code),
                    rationale=_rationale(view, cand, best),
                    eligible=cand.key in best_codes,
                )
            )
        return out

    # parts ---------------------------------------------------------------------------------------------
    @property
    def knowledge(self) -> Knowledge:
        if self._knowledge is None:
            self._knowledge = knowledge_from(self._data_dir)
        return self._knowledge

    @property
    def catalog(self) -> CodeCatalog:
        if self._catalog is None:
            self._catalog = build_catalog(self.knowledge)
        return self._catalog

    @property
    def pipeline(self) -> TextPipeline:
        if self._pipeline is None:
            self._pipeline = full_pipeline(self._data_dir, self._cache_dir)
        return self._pipeline

    def _parts(self) -> tuple[CandidateGenerator, TextPipeline, RulesStep | None]:
        with self._lock:
            if self._generator is None:
                catalog = self.catalog
                lexical = lexical_indexes(catalog, cache_dir=self._cache_dir)
                gen_config = GeneratorConfig(**(self.config.generator or {}))
                tree = self.knowledge.index_tree
                walker = IndexWalker(tree) if tree is not None and self.config.index_walk else None
                self._generator = CandidateGenerator(catalog, lexical, None, gen_config, walker)
                self._rules = build_rules(self.rules_config)
            return self._generator, self.pipeline, self._rules

    def warm_up(self) -> None:
        """Build the indexes now rather than on the first request."""
        self._parts()

    def save(self, path: Path) -> Path:
        manifest = PackManifest.of(
            self,
            PRESET,
            thresholds={t: self.thresholds(t).to_json() for t in ("diagnosis", "procedure")},
            calibration={"method": "identity"},
            config={**self.config.to_json(), "rules": self.rules_config.to_json()},
        )

        def write_parts(folder: Path) -> None:
            save_knowledge(self.knowledge, folder)
            save_lexicon(self.pipeline, folder)
            save_rules(self.rules_config, folder)

        return save_pack(path, manifest, write_extra=write_parts)


def load_pack(path: Path, manifest: PackManifest, runtime: Runtime | None = None) -> BuiltinCoder:
    """A builtin pack: its code knowledge, lexicon and rules config (a pack saved before they were stored
    gets the packaged ICD-10-CM only, with a warning)."""
    path = Path(path)
    knowledge, pipeline = None, None
    if (path / KNOWLEDGE_FILE).is_file() or (path / LEXICON_FILE).is_file():
        knowledge, pipeline = load_knowledge(path), load_pipeline(path)
    else:
        log.warning("builtin pack %s predates packed knowledge: using the packaged ICD-10-CM only", path)
    coder = BuiltinCoder(
        knowledge,
        pipeline,
        BuiltinConfig.from_json(manifest.config),
        rules=load_rules(manifest.config.get("rules"), path),
    )
    coder.metrics = dict(manifest.metrics)
    return coder


_PREGNANCY = re.compile(
    r"pregnan|gestation|obstetric|trimester|postpartum|puerper|gravid|labou?r\b|deliver", re.I
)
_NEWBORN = re.compile(r"newborn|neonat|infant|perinatal|preterm|premature", re.I)


def _encounter_context(view: EncounterView) -> set[str]:
    text = " ".join(d.text for d in view.encounter.documents)
    age = view.encounter.patient.age
    context = set()
    if _PREGNANCY.search(text):
        context.add("O")
    if _NEWBORN.search(text) or (age is not None and age <= 1):
        context.add("P")
    return context


def _context_factor(code: str, context: set[str], cfg: BuiltinConfig) -> float:
    chapter = code[:1]
    if chapter in ("O", "P") and chapter not in context:
        return cfg.out_of_context_factor
    return 1.0


def _distinct_spans(view: EncounterView, by_mention: dict[int, float]) -> dict[int, float]:
    """Merge the scores of overlapping supporting mentions (a clause and the mention inside it are one
    piece of evidence, not two)."""
    merged: dict[int, float] = {}
    spans: list[tuple[int, str, int, int]] = []
    for i, score in sorted(by_mention.items(), key=lambda kv: -kv[1]):
        m = view.mentions[i]
        owner = next(
            (k for k, doc, s, e in spans if doc == m.document_id and m.start < e and s < m.end),
            None,
        )
        if owner is None:
            spans.append((i, m.document_id, m.start, m.end))
            merged[i] = score
        else:
            merged[owner] = max(merged[owner], score)
    return merged


def _clause_owners(view: EncounterView) -> dict[int, tuple[list[int], bool]]:
    """Clause mention -> (the present pipeline mentions it strictly contains, whether it overlaps any
    pipeline mention). A clause shorter than a mention (cut at a comma inside it) competes with nothing;
    a clause overlapping no mention competes on its own."""
    owners: dict[int, tuple[list[int], bool]] = {}
    pipeline = list(enumerate(view.pipeline_mentions))
    for c in range(max(view.n_pipeline, 0), len(view.mentions)):
        clause = view.mentions[c]
        near = [
            (i, m)
            for i, m in pipeline
            if m.document_id == clause.document_id and m.start < clause.end and clause.start < m.end
        ]
        owned = [
            i
            for i, m in near
            if m.assertion.is_present
            and clause.start <= m.start
            and m.end <= clause.end
            and clause.end - clause.start > m.end - m.start
        ]
        owners[c] = (owned, bool(near))
    return owners


def _tiebreak(info: Any) -> tuple[int, int, int]:
    """Prefer billable codes, then default ('unspecified'/NOS) codes, then shallower ones."""
    if info is None:
        return (0, 0, 0)
    return (int(info.billable), int(info.unspecified), -int(info.depth))


def _rationale(view: EncounterView, cand: Candidate, best: Hit | None) -> str:
    if best is None:
        return ""
    mention = view.mentions[best.mention].text
    how = {
        "lexicon": "lexicon match",
        "lexical": "name match",
        "pair": "combination of two conditions in one sentence",
        "history": "personal history",
        "dense": "semantic match",
        WALK: "alphabetic index walk",
    }.get(best.source, best.source)
    n = len({h.mention for h in cand.present})
    more = f"; {n} supporting mentions" if n > 1 else ""
    return f"{how} on '{mention}' (score {best.score:.2f}){more}"
