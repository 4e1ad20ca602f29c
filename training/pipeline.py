"""The training run behind `medcode train`: load, fit, evaluate, save the pack, log to MLflow, register,
and apply the promotion gate. Each step is a function; `train_and_register` strings them together."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.types import Encounter
from medcode.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class TrainRequest:
    dataset: str
    data_dir: Path
    preset: str = "default"
    device: str = "cpu"
    limit: int | None = None
    holdout: float = 0.0
    train_split: str = "train"
    validation_split: str = "dev"
    folds: int | None = None
    dense: bool = True
    knowledge_dir: Path | None = None
    metric: str = "diagnosis.map"
    tolerance: float = 0.0
    out: Path | None = None
    mlflow: bool = True


def _progress(items: Sequence[Any], desc: str) -> Sequence[Any]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="it", leave=False)  # type: ignore[return-value]


def load_splits(req: TrainRequest) -> tuple[list[Encounter], list[Encounter]]:
    from medcode.data.corpora import load_corpus

    train = [e for e in load_corpus(req.dataset, req.data_dir, req.train_split) if e.gold is not None]
    if req.limit:
        train = train[: req.limit]
    if not train:
        raise InvalidInputError(f"no coded encounters in {req.dataset} {req.train_split}")
    try:
        validation = [
            e for e in load_corpus(req.dataset, req.data_dir, req.validation_split) if e.gold is not None
        ]
    except DatasetNotFoundError as exc:
        log.warning("no validation split (%s); the model is not evaluated", exc)
        validation = []
    if req.limit:
        validation = validation[: req.limit]
    return train, validation


def knowledge_root(req: TrainRequest) -> Path | None:
    """Where the optional code knowledge (index, ontology, PCS) is read from."""
    if req.knowledge_dir is not None:
        return req.knowledge_dir
    data_dir = Path(req.data_dir)
    base = data_dir.parent if data_dir.is_dir() else data_dir.parent.parent
    for folder in (base, data_dir):
        if (folder / "icd10cm").is_dir() or (folder / "icd10pcs").is_dir():
            return folder
    return get_settings().data_dir


def fit_preset(req: TrainRequest, train: list[Encounter], validation: list[Encounter]) -> Any:
    if req.preset == "builtin":
        from medcode.model.builtin import BuiltinCoder

        return BuiltinCoder()
    if req.preset == "transformer":
        from medcode.model.transformer import TransformerConfig
        from medcode.training.transformer_train import train_transformer

        return train_transformer(train, validation, TransformerConfig.default_for(req.device), req.device)
    if req.preset == "default":
        from medcode.model.catalog import knowledge_from
        from medcode.model.trained.coder import DefaultConfig
        from medcode.training.default import fit_default

        config = DefaultConfig(use_dense=req.dense)
        if req.folds:
            config.folds = req.folds
        coder, _ = fit_default(
            train,
            knowledge_from(knowledge_root(req)),
            config,
            holdout=req.holdout,
            progress=_progress,
            dataset=f"{req.dataset}:{req.train_split}",
            evidence=training_evidence(req, train),
        )
        return coder
    raise InvalidInputError(f"unknown preset {req.preset!r}")


def training_evidence(
    req: TrainRequest, train: list[Encounter]
) -> dict[str, list[tuple[str, str, str, int, int]]] | None:
    """Sentence-level evidence of the gold codes where the dataset has it (CodiEsp-X, aligned to the English
    text); None otherwise (the default model then locates evidence by similarity)."""
    if req.dataset.lower() != "codiesp":
        return None
    from medcode.training.codiesp_evidence import codiesp_sentence_evidence

    try:
        found = codiesp_sentence_evidence(req.data_dir, req.train_split)
    except (DatasetNotFoundError, InvalidInputError, OSError) as exc:
        log.warning("no CodiEsp-X evidence (%s); evidence is located by similarity", exc)
        return None
    doc_of = {e.encounter_id: e.documents[0].document_id for e in train}
    return {
        enc: [(task, code, doc_of[enc], start, end) for task, code, start, end in items]
        for enc, items in found.items()
        if enc in doc_of
    }


def save_model_pack(coder: Any, path: Path) -> Path:
    if hasattr(coder, "save"):
        return Path(coder.save(path))
    from medcode.model.transformer import save_pack

    return save_pack(coder, path)


def evaluate(
    coder: Any, validation: list[Encounter], train: list[Encounter], req: TrainRequest, out_dir: Path
) -> tuple[dict[str, Any], list[Path]]:
    """Validation report (the evaluation suite's when installed) and the files it wrote (plots...)."""
    if not validation:
        return {}, []
    try:
        from medcode.evaluation.evaluate import evaluate_coder
        from medcode.evaluation.report import write_report
    except ImportError:
        return _evaluate_simple(coder, validation, train), []
    report, curves = evaluate_coder(
        coder,
        validation,
        dataset=req.dataset,
        split=req.validation_split,
        model_ref="candidate",
        train=train,
        data_dir=req.data_dir,
    )
    files = write_report(report, curves, out_dir)
    return report, files


def _evaluate_simple(coder: Any, validation: list[Encounter], train: list[Encounter]) -> dict[str, Any]:
    from medcode.training.metrics import task_metrics

    results = [coder.suggest(e) for e in _progress(validation, "validation")]
    tasks = {}
    for task in ("diagnosis", "procedure"):
        seen = {c for e in train if e.gold for c in e.gold.codes(task)}
        tasks[task] = task_metrics(results, validation, task, seen)
    return {"tasks": tasks}


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The numeric task metrics of a report ({"tasks": {"diagnosis": {"map": ...}}})."""
    out: dict[str, Any] = {}
    for task, values in (report.get("tasks") or {}).items():
        if isinstance(values, dict):
            out[task] = {
                k: v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
            }
    return {"tasks": out}


def train_and_register(req: TrainRequest, workdir: Path) -> dict[str, Any]:
    from medcode.training.default import training_fingerprint

    started = time.perf_counter()
    train, validation = load_splits(req)
    log.info("training %s on %d encounters (%s %s)", req.preset, len(train), req.dataset, req.train_split)
    coder = fit_preset(req, train, validation)
    train_seconds = time.perf_counter() - started
    report, files = evaluate(coder, validation, train, req, workdir / "report")
    metrics = headline(report)
    metrics["train_seconds"] = round(train_seconds, 1)
    if hasattr(coder, "metrics"):
        existing = dict(getattr(coder, "metrics", {}) or {})
        existing["validation"] = {"split": req.validation_split, **metrics}
        coder.metrics = existing
    pack = save_model_pack(coder, (req.out or workdir / "pack"))
    validation_fp = training_fingerprint(validation) if validation else ""
    outcome: dict[str, Any] = {
        "version": coder.version,
        "preset": req.preset,
        "train_encounters": len(train),
        "validation_split": req.validation_split,
        "validation_encounters": len(validation),
        "metrics": metrics,
        "pack": str(req.out) if req.out else None,
    }
    if not req.mlflow:
        return outcome
    outcome.update(_log_register_promote(req, coder, pack, metrics, files, validation, train, validation_fp))
    return outcome


def _log_register_promote(
    req: TrainRequest,
    coder: Any,
    pack: Path,
    metrics: dict[str, Any],
    files: list[Path],
    validation: list[Encounter],
    train: list[Encounter],
    validation_fp: str,
) -> dict[str, Any]:
    from medcode.settings import get_settings
    from medcode.training import tracking
    from medcode.training.promotion import metric_value, promote_if_not_worse, tag_version

    params: dict[str, Any] = {k: str(v) for k, v in asdict(req).items() if k not in ("out",)}
    config = getattr(coder, "config", None)
    if config is not None:
        params["config"] = config.to_json() if hasattr(config, "to_json") else asdict(config)
    with tracking.training_run(
        run_name=f"train-{req.preset}", tags={"preset": req.preset, "model_version": coder.version}
    ):
        tracking.log_params(params)
        tracking.log_metrics(metrics, prefix=f"{req.validation_split}.")
        if files:
            tracking.log_files([f for f in files if f.is_file()], "validation_report")
        logged = tracking.log_and_register_pack(pack)
    out: dict[str, Any] = {
        "registered_name": logged.name,
        "registered_version": logged.version,
        "run_id": logged.run_id,
    }
    if not validation:
        return out
    try:
        value = (
            metric_value(metrics["tasks"], req.metric)
            if "." in req.metric
            else metric_value(metrics, req.metric)
        )
    except KeyError:
        raise InvalidInputError(f"validation metric {req.metric!r} was not measured") from None
    client = get_settings().registry.client()
    tag_version(client, logged.name, logged.version, req.metric, value, validation_fp)
    champion_value = _remeasure_champion(client, logged.name, req, validation, train, validation_fp)
    decision = promote_if_not_worse(
        client,
        logged.name,
        logged.version,
        value,
        metric=req.metric,
        tolerance=req.tolerance,
        champion_value=champion_value,
    )
    out["promotion"] = decision.to_json()
    return out


def _remeasure_champion(
    client: Any, name: str, req: TrainRequest, validation: list[Encounter], train: list[Encounter], fp: str
) -> float | None:
    """The champion's metric on this validation set when its stored one was measured elsewhere."""
    from medcode.settings import get_settings
    from medcode.training.promotion import current_champion, metric_value

    champion = current_champion(client, name)
    if champion is None or (champion.fingerprint == fp and champion.metric == req.metric):
        return None
    log.info("re-measuring champion version %s on this validation set", champion.version)
    try:
        coder = get_settings().registry.load_model(f"models:/{name}/{champion.version}")
    except Exception as exc:  # an unloadable champion is replaced
        log.warning("champion version %s cannot be loaded (%s); it will be replaced", champion.version, exc)
        return None
    with _tempdir() as tmp:
        report, _ = evaluate(coder, validation, train, req, tmp)
    try:
        return metric_value(headline(report)["tasks"], req.metric)
    except KeyError:
        return None


def _tempdir() -> Any:
    import tempfile

    class _Dir:
        def __enter__(self) -> Path:
            self._tmp = tempfile.TemporaryDirectory(prefix="medcode-eval-")
            return Path(self._tmp.name)

        def __exit__(self, *exc: object) -> None:
            self._tmp.cleanup()

    return _Dir()
