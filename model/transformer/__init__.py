"""The transformer preset: a PLM-ICD-style encoder with label-wise attention plus bi-encoder retrieval.

Importing this package loads no torch; the heavy modules load when a function below is called.

- `TransformerConfig` (model.transformer.config): every option of the preset.
- `load_pack(path) -> TransformerCoder`: a saved pack as a `Coder` (model.pack dispatches here).
- `save_pack(coder, path)`: write a pack folder.
- Training lives in training.transformer_train (`train_transformer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.model.transformer.config import TransformerConfig

if TYPE_CHECKING:
    from medcode.model.pack import PackManifest
    from medcode.model.runtime import Runtime
    from medcode.model.transformer.coder import TransformerCoder

__all__ = ["TransformerCoder", "TransformerConfig", "load_pack", "save_pack"]


def load_pack(
    path: Path | str,
    manifest: PackManifest | None = None,
    runtime: Runtime | None = None,
    *,
    device: str | None = None,
) -> TransformerCoder:
    """Load a transformer model pack folder (manifest preset "transformer") as a TransformerCoder, on
    `device` (default: the runtime's)."""
    from medcode.model.transformer.pack import load_pack as _load

    device = device or (runtime.device if runtime is not None else "cpu")
    coder: TransformerCoder = _load(path, manifest, device=device)
    return coder


def save_pack(coder: TransformerCoder, path: Path | str) -> Path:
    """Write a TransformerCoder as a model pack folder and return the folder."""
    from medcode.model.transformer.pack import save_pack as _save

    return _save(coder, Path(path))


def __getattr__(name: str) -> Any:
    if name == "TransformerCoder":
        from medcode.model.transformer.coder import TransformerCoder

        return TransformerCoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
