"""`medcode train --max-candidates`: the default preset's per-note, per-task candidate cap is a training
option, saved in the pack's config (packs saved before it keep the 400 they were fitted with), and it is the
cap the candidate step applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medcode.cli import build_parser
from medcode.data.errors import InvalidInputError
from medcode.model.candidates.generate import EncounterView
from medcode.model.trained.classifier import DocScores
from medcode.model.trained.coder import DefaultConfig, Prepared, task_candidates
from medcode.training.options import TrainingOptions
from medcode.training.presets import default_config

from .fakes import encounter


def _options(tmp_path: Path, *extra: str) -> TrainingOptions:
    args = build_parser().parse_args(["train", "--dataset", "jsonl", "--data-dir", str(tmp_path), *extra])
    return TrainingOptions.from_args(args)


def test_the_option_reaches_the_saved_config_and_old_packs_keep_400(tmp_path: Path) -> None:
    config = default_config(_options(tmp_path, "--max-candidates", "800"))
    assert DefaultConfig.from_json(config.to_json()).max_candidates_per_task == 800
    assert default_config(_options(tmp_path)).max_candidates_per_task == 400  # the preset's own default
    # a config saved without the key (a pack fitted before the option existed) loads with the default
    old = {k: v for k, v in config.to_json().items() if k != "max_candidates_per_task"}
    assert DefaultConfig.from_json(old).max_candidates_per_task == 400


def test_a_non_positive_cap_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="--max-candidates must be at least 1"):
        _options(tmp_path, "--max-candidates", "0")


def test_the_candidate_step_keeps_the_configured_number_of_best_candidates(tmp_path: Path) -> None:
    view = EncounterView(encounter=encounter("e1", "Chest pain."), mentions=[], sentences=[])
    prepared = Prepared(view=view, candidates={}, text="Chest pain.", document_vector=np.zeros(3))
    linear = {f"R{i:02d}.9": 1.0 - i / 100 for i in range(30)}  # R00.9 strongest, R29.9 weakest
    scores = DocScores(linear=linear, knn_tfidf={}, knn_dense={})

    def kept(cap: int) -> list[str]:
        config = default_config(_options(tmp_path, "--max-candidates", str(cap)))
        found = task_candidates(None, prepared, "diagnosis", scores, {}, config)  # type: ignore[arg-type]
        return sorted(c.code for c in found)

    assert kept(5) == [f"R{i:02d}.9" for i in range(5)]
    assert len(kept(12)) == 12
    assert len(kept(800)) == 30  # under the cap: every candidate stays
