"""The interface every coding model offers, whatever its preset (builtin, default, transformer).

Callers use these members and nothing else: training sets `metrics` after evaluating a fitted model and
saves it with `save`; evaluation reads `training_data` to warn when a split was trained on; the service
reads `calibrated` through each result. Each preset's coder implements all of them (`model.presets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from medcode.data.types import Encounter, Result

if TYPE_CHECKING:
    from medcode.model.text.pipeline import TextPipeline


class PresetConfig(Protocol):
    """A preset's resolved configuration, serialisable into the model pack."""

    def to_json(self) -> dict[str, Any]: ...


@runtime_checkable
class Coder(Protocol):
    """A loaded model: one encounter in, one result out (codes, candidates, routing)."""

    metrics: dict[str, Any]
    """Figures measured on the model (e.g. `{"validation": {...}}`), saved in its pack."""
    training_data: dict[str, Any]
    """What the model was fitted on: dataset, splits, document count, `fingerprint` (empty: no training)."""

    @property
    def version(self) -> str: ...

    @property
    def code_set_version(self) -> str: ...

    @property
    def calibrated(self) -> bool:
        """True when confidences estimate P(code is correct); False routes everything to review."""
        ...

    @property
    def config(self) -> PresetConfig: ...

    @property
    def pipeline(self) -> TextPipeline | None:
        """The text pipeline whose mentions and assertions the model codes from (its pack's own, so the coder
        UI shows what the model read); None when the model reads notes with the installed one
        (`model.mentions`)."""
        ...

    def suggest(self, encounter: Encounter) -> Result: ...

    def save(self, path: Path) -> Path:
        """Write the model as a pack folder (`model.pack`) that `model.pack.load_pack` reads back."""
        ...
