"""The fit side of the preset registry: one fit function per preset of `model.presets`, and `fit_model`,
the one fit path of `medcode train`, `medcode retrain` and the learning-loop simulation.

    coder = fit_model(options, FitJob(train, validation, evidence=..., dataset="codiesp:train"))

`FitJob.notes` lets several fits share notes already read (the simulation refits the default model every
round on mostly the same notes): a `PreparedCache` built once for the default preset's resources.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.data.errors import InvalidInputError
from medcode.data.types import Encounter
from medcode.model import presets
from medcode.model.base import Coder
from medcode.training.feedback import TrainingSet, text_key
from medcode.training.options import TrainingOptions

if TYPE_CHECKING:
    from medcode.model.rules.pipeline import RulesConfig
    from medcode.model.text.pipeline import TextPipeline
    from medcode.model.trained.coder import CodeResources, DefaultConfig, Prepared

log = logging.getLogger(__name__)

Progress = Callable[[Sequence[Any], str], Sequence[Any]]
EvidenceSpans = dict[str, list[tuple[str, str, str, int, int]]]
"""encounter id -> [(task, code, document id, start, end)]: text spans known to support gold codes."""


def no_progress(items: Sequence[Any], desc: str) -> Sequence[Any]:
    return items


def tqdm_progress(items: Sequence[Any], desc: str) -> Sequence[Any]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="it", leave=False)  # type: ignore[return-value]


class PreparedCache:
    """Each note read once (mentions, sentences, vectors, candidates) for every default model that shares
    `resources` (the simulation's rounds)."""

    def __init__(self, resources: CodeResources, extractor: TextPipeline) -> None:
        self.resources = resources
        self.extractor = extractor
        self._items: dict[tuple[str, str], Prepared] = {}

    def get(self, encounter: Encounter) -> Prepared:
        key = (encounter.encounter_id, text_key(encounter))
        found = self._items.get(key)
        if found is None:
            found = self.resources.prepare(encounter.model_copy(update={"gold": None}), self.extractor)
            self._items[key] = found
        return found

    def warm(
        self, encounters: Sequence[Encounter], desc: str, progress: bool = True, chunk: int = 64
    ) -> None:
        """Read the notes not read yet, `chunk` at a time with batched encoding (`prepare_many`): the same
        result as `get` one by one, several times faster."""
        from tqdm import tqdm

        todo: dict[tuple[str, str], Encounter] = {}
        for encounter in encounters:
            key = (encounter.encounter_id, text_key(encounter))
            if key not in self._items:
                todo.setdefault(key, encounter.model_copy(update={"gold": None}))
        keys = list(todo)
        with tqdm(total=len(keys), desc=desc, unit="note", leave=False, disable=not progress) as bar:
            for start in range(0, len(keys), chunk):
                part = keys[start : start + chunk]
                prepared = self.resources.prepare_many([todo[k] for k in part], self.extractor)
                self._items.update(zip(part, prepared, strict=True))
                bar.update(len(part))


@dataclass(frozen=True)
class FitEnvironment:
    """What the machine a fit runs on supplies, resolved at the edge from the settings and passed down."""

    knowledge_fallback: Path | None = None
    """Code-knowledge folder when the options name none and none lies beside the data (MEDCODE_DATA_DIR)."""
    rules: RulesConfig | None = None
    """The coding-rules config the fitted model carries (MEDCODE_RULES, MEDCODE_NCCI_FILE; None: rules on)."""
    cache_dir: Path | None = None
    """Where compiled lexicons and code vectors are kept between fits (None: built anew)."""


@dataclass
class FitJob:
    """What one fit is given besides the options: the training encounters and what helps fit them."""

    train: Sequence[Encounter]
    validation: Sequence[Encounter] = ()
    """Held-out encounters a preset may measure itself on (the transformer's metrics); never fitted on."""
    evidence: EvidenceSpans | None = None
    dataset: str = ""
    """How the training data is named in the model's `training_data` (e.g. "codiesp:train+feedback")."""
    progress: Progress = no_progress
    notes: PreparedCache | None = None
    """Notes already read with shared default-preset resources (None: the fit reads them)."""
    environment: FitEnvironment = field(default_factory=FitEnvironment)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_training_set(
        cls,
        training: TrainingSet,
        options: TrainingOptions,
        *,
        progress: Progress = no_progress,
        notes: PreparedCache | None = None,
        environment: FitEnvironment | None = None,
    ) -> FitJob:
        """The fit of a training set merged with review feedback (retrain and the simulation): its
        encounters with the feedback's evidence spans, named "<dataset>:<train split>+feedback"."""
        return cls(
            training.encounters,
            evidence=training.evidence or None,
            dataset=f"{options.dataset}:{options.train_split}+feedback",
            progress=progress,
            notes=notes,
            environment=environment or FitEnvironment(),
        )


def default_config(options: TrainingOptions) -> DefaultConfig:
    """The default preset's configuration with the options' overrides (dense encoder, folds, ranker,
    candidate cap)."""
    from medcode.model.trained.coder import DefaultConfig

    config = DefaultConfig(use_dense=options.dense)
    if options.folds:
        config.folds = options.folds
    if options.ranker_max_iter:
        config.ranker_max_iter = options.ranker_max_iter
    if options.max_candidates:
        config.max_candidates_per_task = options.max_candidates
    if options.related_candidates:
        config.generator = {**config.generator, "related": True}
    return config


def dense_encoder(
    options: TrainingOptions,
    train: Sequence[Encounter],
    evidence: EvidenceSpans | None,
    environment: FitEnvironment,
    knowledge: Any,
) -> Any:
    """The default preset's sentence encoder for these options: None for the packaged one, else the linked
    encoder fine-tuned on `train` (and its evidence), cached in the environment's cache folder."""
    if options.encoder != "linked" or not options.dense:
        return None
    from medcode.training.linking import LinkConfig, default_profile, linked_encoder, linking_job

    profile = options.encoder_profile or default_profile()
    config = LinkConfig.for_profile(profile, options.encoder_steps, options.encoder_minutes)
    root = options.knowledge_root(environment.knowledge_fallback)
    job = linking_job(
        knowledge,
        [e for e in train if e.gold is not None],
        evidence,
        config,
        lexicon_dir=root,
        cache_dir=environment.cache_dir,
    )
    return linked_encoder(
        job, environment.cache_dir, needs_gpu=profile == "gpu" and options.encoder_minutes is None
    )


def shared_notes(
    options: TrainingOptions, train: Sequence[Encounter], environment: FitEnvironment | None = None
) -> PreparedCache | None:
    """Default-preset resources (code knowledge, indexes, encoder) built once for `train`'s codes, with an
    empty note cache, for fits that share them (`FitJob.notes`); None when the preset reads no notes."""
    if not preset_fit_of(options.preset).reads_notes:
        return None
    from medcode.model.catalog import knowledge_from
    from medcode.model.text.sources import full_pipeline
    from medcode.model.trained.coder import CodeResources

    environment = environment or FitEnvironment()
    root = options.knowledge_root(environment.knowledge_fallback)
    knowledge = knowledge_from(root)
    resources = CodeResources(
        knowledge,
        default_config(options),
        extra_pcs_codes=sorted({c for e in train if e.gold for c in e.gold.procedure}),
        training_codes=sorted({c for e in train if e.gold for c in e.gold.diagnosis}),
        encoder=dense_encoder(options, train, None, environment, knowledge),
    )
    return PreparedCache(resources, full_pipeline(root))


def _fit_builtin(options: TrainingOptions, job: FitJob) -> Coder:
    from medcode.model.builtin import BuiltinCoder

    return BuiltinCoder(
        data_dir=options.knowledge_root(job.environment.knowledge_fallback),
        cache_dir=job.environment.cache_dir,
        rules=job.environment.rules,
    )


def _fit_default(options: TrainingOptions, job: FitJob) -> Coder:
    from medcode.training.default import fit_default

    config = default_config(options)
    common: dict[str, Any] = {
        "holdout": options.holdout,
        "progress": job.progress,
        "dataset": job.dataset,
        "evidence": job.evidence or None,
        "rules": job.environment.rules,
        "cache_dir": job.environment.cache_dir,
    }
    if job.notes is not None:
        coder, _ = fit_default(
            job.train,
            job.notes.resources.knowledge,
            config,
            pipeline=job.notes.extractor,
            resources=job.notes.resources,
            prepared=[job.notes.get(e) for e in job.train if e.gold is not None],
            **common,
        )
        return coder
    from medcode.model.catalog import knowledge_from

    root = options.knowledge_root(job.environment.knowledge_fallback)
    knowledge = knowledge_from(root)
    encoder = dense_encoder(options, job.train, job.evidence, job.environment, knowledge)
    coder, _ = fit_default(job.train, knowledge, config, lexicon_dir=root, encoder=encoder, **common)
    return coder


def _fit_transformer(options: TrainingOptions, job: FitJob) -> Coder:
    from medcode.data.codesystems import load_code_sets
    from medcode.model.transformer import TransformerConfig
    from medcode.training.transformer_train import train_transformer

    config = TransformerConfig.default_for(options.device)
    code_sets = load_code_sets(options.knowledge_root(job.environment.knowledge_fallback))
    coder: Coder = train_transformer(
        list(job.train), list(job.validation), config, options.device, code_sets=code_sets
    )
    return coder


@dataclass(frozen=True)
class PresetFit:
    fit: Callable[[TrainingOptions, FitJob], Coder]
    reads_notes: bool = False
    """Fits share notes read once (`FitJob.notes`, a `PreparedCache` from `shared_notes`)."""


FITS: dict[str, PresetFit] = {
    "builtin": PresetFit(_fit_builtin),
    "default": PresetFit(_fit_default, reads_notes=True),
    "transformer": PresetFit(_fit_transformer),
}
"""preset name (as in `model.presets.PRESETS`) -> how it is fitted."""


def preset_fit_of(name: str) -> PresetFit:
    preset = presets.get(name)
    found = FITS.get(preset.name)
    if found is None:
        raise InvalidInputError(f"the {preset.name!r} preset cannot be fitted by this medcode")
    return found


def fit_model(options: TrainingOptions, job: FitJob) -> Coder:
    """Fit `options.preset` on `job.train`: the one fit path of train, retrain and the simulation."""
    preset = presets.get(options.preset)
    fit = preset_fit_of(preset.name)
    train = [e for e in job.train if e.gold is not None]
    if preset.learns and not train:
        raise InvalidInputError("no coded encounters to train on")
    log.info("fitting the %s preset on %d encounters (%s)", preset.name, len(train), job.dataset)
    return fit.fit(options, job)
