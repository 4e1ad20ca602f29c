"""The training options shared by `medcode train`, `medcode retrain` and `medcode simulate-feedback`.

`add_training_options(parser)` writes them once; `TrainingOptions.from_args(args)` reads them back and
checks them (one clear error per bad value). Commands add their own options beside these (`--out`,
`--rounds`, ...) and may change a default with `parser.set_defaults(...)` (the simulation's reduced folds).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.types import Encounter
from medcode.model import presets

ENCODERS = ("generic", "linked")
ENCODER_PROFILES = ("cpu", "gpu")
"""`training.linking.LINK_PROFILES` (named here: reading the options imports no torch)."""


@dataclass(frozen=True)
class TrainingOptions:
    """How to fit a model preset and gate it: data, preset options, promotion metric, tracking."""

    dataset: str
    data_dir: Path
    preset: str = presets.DEFAULT_PRESET
    device: str = "cpu"
    limit: int | None = None
    """Use only the first N training (and validation) encounters."""
    holdout: float = 0.0
    """Share of train held out for calibration and thresholds (0: K-fold out-of-fold)."""
    train_split: str = "train"
    validation_split: str = "dev"
    folds: int | None = None
    """K of the default preset's out-of-fold training (None: the preset's default)."""
    ranker_max_iter: int | None = None
    """Boosting iterations of the default preset's ranker (None: the preset's default)."""
    max_candidates: int | None = None
    """Most candidates the default preset ranks per note and task (None: the preset's default, 400)."""
    dense: bool = True
    encoder: str = "generic"
    """Sentence encoder of dense retrieval: "generic" (the packaged MiniLM) or "linked" (fine-tuned here to
    link mentions to codes, `training.linking`; its weights travel inside the pack)."""
    encoder_steps: int | None = None
    """Fine-tuning steps of the linked encoder (None: `LinkConfig`'s default)."""
    encoder_minutes: float | None = None
    """Wall-clock budget of the linked encoder's fine-tune (None: only the step budget bounds it)."""
    encoder_profile: str | None = None
    """How the linked encoder is fine-tuned: "cpu" or "gpu" (`training.linking.LINK_PROFILES`); None: "gpu"
    where torch sees a CUDA device, else "cpu"."""
    related_candidates: bool = False
    """Default preset: also offer the tabular relatives (children, siblings, parent) of each mention's
    strongest codes as candidates (`model.candidates.related`; saved in the pack's generator config)."""
    knowledge_dir: Path | None = None
    """Datasets folder with the ICD-10-CM index, Disease Ontology and ICD-10-PCS (see `knowledge_root`)."""
    metric: str = "diagnosis.map"
    tolerance: float = 0.0
    mlflow: bool = True

    def __post_init__(self) -> None:
        presets.get(self.preset)  # an unknown preset is one clear error
        if not 0 <= self.holdout < 0.9:
            raise InvalidInputError("--holdout must be in [0, 0.9)")
        if self.limit is not None and self.limit < 4:
            raise InvalidInputError("--limit must be at least 4")
        if self.folds is not None and self.folds < 2:
            raise InvalidInputError("--folds must be at least 2")
        if self.ranker_max_iter is not None and self.ranker_max_iter < 1:
            raise InvalidInputError("--ranker-iter must be at least 1")
        if self.max_candidates is not None and self.max_candidates < 1:
            raise InvalidInputError("--max-candidates must be at least 1")
        if self.encoder not in ENCODERS:
            raise InvalidInputError(f"--encoder must be one of {', '.join(ENCODERS)}")
        if self.encoder_steps is not None and self.encoder_steps < 1:
            raise InvalidInputError("--encoder-steps must be at least 1")
        if self.encoder_minutes is not None and self.encoder_minutes <= 0:
            raise InvalidInputError("--encoder-minutes must be positive")
        if self.encoder_profile is not None and self.encoder_profile not in ENCODER_PROFILES:
            raise InvalidInputError(f"--encoder-profile must be one of {', '.join(ENCODER_PROFILES)}")
        if self.tolerance < 0:
            raise InvalidInputError("--tolerance must not be negative")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainingOptions:
        """The options `add_training_options` added, checked; the data folder must exist."""
        values: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(cls) if f.name in vars(args)}
        values["dense"] = not args.no_dense
        values["mlflow"] = not args.no_mlflow
        options = cls(**values)
        if not Path(options.data_dir).exists():
            raise DatasetNotFoundError(f"data folder not found: {options.data_dir}")
        return options

    def coded_encounters(self, split: str) -> list[Encounter]:
        """The encounters of `split` of the options' dataset that carry gold codes (no limit applied)."""
        from medcode.data.corpora import load_corpus

        return [e for e in load_corpus(self.dataset, self.data_dir, split) if e.gold is not None]

    def knowledge_root(self, fallback: Path | None = None) -> Path | None:
        """Where the optional code knowledge (index, ontology, PCS) is read from: `knowledge_dir`, else the
        datasets folder around `data_dir` that holds `icd10cm/` or `icd10pcs/`, else `fallback` (the
        caller's MEDCODE_DATA_DIR)."""
        if self.knowledge_dir is not None:
            return self.knowledge_dir
        data_dir = Path(self.data_dir)
        base = data_dir.parent if data_dir.is_dir() else data_dir.parent.parent
        for folder in (base, data_dir):
            if (folder / "icd10cm").is_dir() or (folder / "icd10pcs").is_dir():
                return folder
        return fallback


def add_training_options(
    parser: argparse.ArgumentParser,
    *,
    preset_names: tuple[str, ...] | None = None,
    folds: int | None = None,
    ranker_iter: int | None = None,
) -> None:
    """The options of every training command (see `TrainingOptions` for what each means). `folds` and
    `ranker_iter` set a command's own defaults (None: the preset's own)."""
    choices = preset_names or presets.names()
    parser.add_argument("--dataset", required=True, help="codiesp or jsonl")
    parser.add_argument("--data-dir", required=True, type=Path, help="the dataset folder")
    parser.add_argument(
        "--preset",
        choices=choices,
        default=presets.DEFAULT_PRESET,
        help=f"model preset (default: {presets.DEFAULT_PRESET})",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the transformer preset)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training encounters")
    parser.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        help="share of train held out for calibration and thresholds (0: K-fold out-of-fold, the default)",
    )
    parser.add_argument("--train-split", default="train")
    parser.add_argument(
        "--validation-split",
        "--eval-split",
        dest="validation_split",
        default="dev",
        help="the frozen split every model is evaluated and compared on (default: dev)",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=folds,
        help=f"K for out-of-fold training (default: {folds or 'the preset config'})",
    )
    parser.add_argument(
        "--ranker-iter",
        dest="ranker_max_iter",
        type=int,
        default=ranker_iter,
        help=f"boosting iterations of the default preset's ranker (default: {ranker_iter or 'the preset config'})",
    )
    parser.add_argument(
        "--max-candidates",
        dest="max_candidates",
        type=int,
        default=None,
        help="most candidates the default preset ranks per note and task (default: the preset config, 400)",
    )
    parser.add_argument("--no-dense", action="store_true", help="default preset without the sentence encoder")
    parser.add_argument(
        "--related-candidates",
        action="store_true",
        help="default preset: also rank the children, siblings and parent of each mention's strongest codes",
    )
    parser.add_argument(
        "--encoder",
        choices=ENCODERS,
        default="generic",
        help="default preset's sentence encoder: the packaged MiniLM (generic) or one fine-tuned here to link "
        "mentions to codes (linked; cached between trainings, carried by the pack)",
    )
    parser.add_argument(
        "--encoder-steps",
        type=int,
        default=None,
        help="fine-tuning steps of the linked encoder (default: 240; one CPU thread, about 4 s a step "
        "on a loaded 2-core machine)",
    )
    parser.add_argument(
        "--encoder-minutes",
        type=float,
        default=None,
        help="stop the linked encoder's fine-tune after this many minutes even before its steps (part of its "
        "cache key; default: no time limit, deterministic)",
    )
    parser.add_argument(
        "--encoder-profile",
        choices=ENCODER_PROFILES,
        default=None,
        help="how the linked encoder is fine-tuned: cpu (240 steps of 32 pairs, minutes on 2 cores) or gpu "
        "(1,200 steps of 256, every layer; a GPU minute, or its weights from the cache; default: gpu where torch "
        "sees a CUDA device, else cpu)",
    )
    parser.add_argument(
        "--knowledge-dir",
        type=Path,
        default=None,
        help="datasets folder with the ICD-10-CM index, Disease Ontology and ICD-10-PCS "
        "(default: the data folder's parent, else MEDCODE_DATA_DIR)",
    )
    parser.add_argument("--metric", default="diagnosis.map", help="validation metric of the promotion gate")
    parser.add_argument(
        "--tolerance", type=float, default=0.0, help="how much worse than the champion still promotes (0)"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not log, register or promote")
