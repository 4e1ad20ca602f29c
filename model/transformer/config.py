"""The transformer preset's configuration: one dataclass, every option with its effective value.

The resolved configuration is stored in the model pack manifest, so a pack says exactly how it was built.
No torch import here: the CLI and the pack reader use this module without loading the encoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

LossName = Literal["bce", "focal", "asl"]
CalibrationName = Literal["auto", "platt", "isotonic"]


@dataclass
class TransformerConfig:
    """Model shape, training schedule and inference options of the transformer preset."""

    # encoder and note chunking
    encoder_path: str | None = None
    """Folder of a Hugging Face encoder; None means the packaged all-MiniLM-L6-v2 weights."""
    num_layers: int | None = None
    """Keep only the first N encoder layers (a truncated encoder for quick CPU runs); None keeps all."""
    chunk_tokens: int = 256
    """Tokens per chunk including [CLS] and [SEP] (PLM-ICD style segments of 128-256 tokens)."""
    max_tokens: int = 1024
    """Text tokens per encounter kept (all documents together); the rest is cut and logged."""
    title_max_tokens: int = 48
    """Tokens per code description when embedding titles."""

    # optimisation
    epochs: int = 10
    batch_size: int = 8
    eval_batch_size: int = 16
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    loss: LossName = "bce"
    focal_gamma: float = 2.0
    asl_gamma_neg: float = 4.0
    asl_gamma_pos: float = 0.0
    asl_clip: float = 0.05
    train_label_sample: int | None = None
    """Score only this many labels per training step (the batch's gold labels, then random ones);
    None scores all. Label-wise attention costs labels x tokens x hidden: sampling makes CPU epochs cheap."""
    freeze_layers: int = 0
    """Freeze the embeddings and the first N encoder layers (-1 freezes the whole encoder)."""
    min_code_count: int = 1
    """A code becomes a label of the attention head when it is gold in at least this many training notes."""
    seed: int = 13
    num_threads: int | None = None
    """torch CPU threads; None uses every core available to the process."""
    amp: bool = True
    """bf16 autocast on CUDA (ignored on the CPU)."""

    # bi-encoder retrieval of code descriptions (codes never seen in training)
    retrieval: bool = True
    retrieval_weight: float = 0.5
    """Weight of the note-sentence / code-description matching loss during training."""
    retrieval_negatives: int = 64
    """Code descriptions sampled per batch (gold ones first, then random labels) for that loss."""
    retrieval_top_k: int = 20
    """Unseen billable codes proposed per encounter by description similarity."""
    retrieval_per_mention: int = 3
    """Unseen codes proposed per present mention of the text pipeline (when it is installed)."""
    retrieval_codes: list[str] | None = None
    """Restrict retrieval to these ICD-10-CM codes (tests use a handful); None = every billable code."""
    retrieval_skip_later_encounters: bool = False
    """Leave 7th-character variants for subsequent encounters and sequelae out of the retrieval pool
    (75k -> 36k codes: halves the one-off title embedding on a CPU)."""

    # held-out calibration and decisions
    calibration_fraction: float = 0.15
    """Share of the training encounters held out (by a hash of their id) to fit calibration/thresholds."""
    calibration: CalibrationName = "auto"
    """'auto' = isotonic when the held-out set has at least `isotonic_min_positives` positives, else Platt."""
    isotonic_min_positives: int = 200
    max_candidates: int = 50
    """Ranked codes kept per task (suggested codes plus candidates)."""
    mask_non_present: bool = True
    """Replace the tokens of negated/family/hypothetical mentions by [MASK] before encoding."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes carried into the manifest (dataset name, command line, ...)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> dict[str, Any]:
        """The same as `to_dict` (the `model.base.PresetConfig` name every preset's config offers)."""
        return self.to_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransformerConfig:
        """Build from a manifest's `config`; unknown keys (from newer packs) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def for_device(self, device: str) -> TransformerConfig:
        """Defaults suited to the device: larger batches on a GPU, fewer chunks on the CPU."""
        if device.startswith("cuda"):
            return replace(
                self, batch_size=max(self.batch_size, 16), eval_batch_size=max(self.eval_batch_size, 64)
            )
        return self

    @classmethod
    def default_for(cls, device: str) -> TransformerConfig:
        """The starting configuration of `medcode train --preset transformer --device DEVICE`.

        cuda: the whole encoder fine-tuned for 20 epochs (bf16 autocast, batches of 16 notes).
        cpu: a frozen encoder (token states computed once, only the label head and the retrieval scale
        learn), 512 tokens per note, a retrieval pool without subsequent-encounter/sequela codes: minutes
        on a few cores instead of hours.
        """
        if device.startswith("cuda"):
            return cls(epochs=20).for_device(device)
        return cls(
            epochs=5,
            max_tokens=512,
            freeze_layers=-1,
            head_lr=2e-3,
            train_label_sample=384,
            retrieval_skip_later_encounters=True,
        )

    @classmethod
    def tiny(cls, **overrides: Any) -> TransformerConfig:
        """A truncated encoder and short inputs: trains on a handful of notes in seconds on the CPU."""
        base = cls(
            num_layers=2,
            chunk_tokens=64,
            max_tokens=128,
            epochs=8,
            batch_size=4,
            eval_batch_size=8,
            encoder_lr=1e-4,
            head_lr=5e-3,
            warmup_ratio=0.05,
            retrieval_negatives=16,
            calibration_fraction=0.2,
        )
        return replace(base, **overrides)
