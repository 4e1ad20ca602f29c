"""The preset registry: every model preset medcode knows, with how a saved pack of it is loaded.

A preset is one kind of coding model: `builtin` (knowledge-based, no training), `default` (trained
candidates and ranker, CPU) and `transformer` (fine-tuned encoder). Every coder implements
`model.base.Coder`, so saving is `coder.save(path)` whatever the preset, and loading dispatches here on the
pack manifest's `preset`. Fitting needs training code, which model/ may not import: `training.presets`
holds one fit function per preset named here (a test checks that the two lists agree).

Nothing else in medcode branches on a preset's name: CLI choices come from `names()`, pack loading from
`get(name).load`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medcode.data.errors import ModelNotFoundError

if TYPE_CHECKING:
    from medcode.model.base import Coder
    from medcode.model.pack import PackManifest
    from medcode.model.runtime import Runtime

Loader = Callable[[Path, "PackManifest", "Runtime"], "Coder"]


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    load: Loader
    """(pack folder, its manifest, the runtime's deployment choices) -> the loaded Coder; heavy modules
    are imported only when called."""
    learns: bool
    """Fitted on coded encounters (retraining and the learning-loop simulation refit it)."""


def _load_builtin(path: Path, manifest: PackManifest, runtime: Runtime) -> Coder:
    from medcode.model.builtin import load_pack

    return load_pack(path, manifest, runtime)


def _load_default(path: Path, manifest: PackManifest, runtime: Runtime) -> Coder:
    from medcode.model.trained.coder import load_pack

    return load_pack(path, manifest, runtime)


def _load_transformer(path: Path, manifest: PackManifest, runtime: Runtime) -> Coder:
    from medcode.model.transformer import load_pack

    return load_pack(path, manifest, runtime)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("builtin", "knowledge-based: ICD-10 index and tabular, no training", _load_builtin, False),
        Preset("default", "trained candidates, ranker and calibration (CPU, minutes)", _load_default, True),
        Preset(
            "transformer", "fine-tuned encoder with label attention (GPU to train)", _load_transformer, True
        ),
    )
}
DEFAULT_PRESET = "default"


def names(*, learning_only: bool = False) -> tuple[str, ...]:
    """Preset names, in registry order (only those fitted on coded data with `learning_only`)."""
    return tuple(name for name, preset in PRESETS.items() if preset.learns or not learning_only)


def get(name: str) -> Preset:
    """The preset called `name`; ModelNotFoundError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model preset {name!r}: this medcode knows {', '.join(PRESETS)}"
        ) from None
