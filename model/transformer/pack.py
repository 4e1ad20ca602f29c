"""Save and load a transformer model pack (the container itself is model.pack's).

pack/
  manifest.json          preset "transformer", version, code-set version, thresholds, calibration,
                         training-data fingerprint, metrics, resolved config (+ "labels": the label list
                         in output order, and "encoder_fingerprint")
  weights.safetensors    encoder + label-attention head
  encoder/               encoder config.json and tokenizer files (no network access needed to load)
  titles.npz             description embeddings of the retrievable codes (never re-embedded on load)
  rules/                 NCCI edits of the rules config, when it has any
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from medcode.data.errors import ModelNotFoundError
from medcode.model.calibration import Calibrator
from medcode.model.pack import PackManifest, read_manifest, verify_pack
from medcode.model.pack import save_pack as save_container
from medcode.model.rules.pipeline import load_rules, save_rules
from medcode.model.thresholds import TaskThresholds
from medcode.model.transformer.codes import Label
from medcode.model.transformer.config import TransformerConfig
from medcode.model.transformer.retrieval import load_title_index, save_title_index

log = logging.getLogger(__name__)

PRESET = "transformer"
WEIGHTS = "weights.safetensors"
ENCODER_DIR = "encoder"


def save_pack(coder: Any, path: Path) -> Path:
    """Write `coder` (a TransformerCoder) as a pack folder; returns the folder."""
    from safetensors.torch import save_file

    path = Path(path)
    config = coder.config.to_dict()
    config["labels"] = coder.labels_json()
    config["encoder_fingerprint"] = coder.weights_fingerprint()
    config["rules"] = coder.rules_config.to_json()
    manifest = PackManifest.of(
        coder,
        PRESET,
        thresholds={task: th.to_json() for task, th in coder.thresholds.items()},
        calibration={key: cal.to_json() for key, cal in coder.calibration.items()},
        config=config,
    )

    def write_weights(folder: Path) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in coder.net.state_dict().items()}
        save_file(state, str(folder / WEIGHTS), metadata={"preset": PRESET, "version": coder.version})
        encoder_dir = folder / ENCODER_DIR
        encoder_dir.mkdir(exist_ok=True)
        coder.net.encoder.config.save_pretrained(encoder_dir)
        coder.tokenizer.save_pretrained(encoder_dir)
        save_title_index(coder.title_index(), folder)
        save_rules(coder.rules_config, folder)

    return save_container(path, manifest, write_extra=write_weights)


def load_pack(path: Path | str, manifest: PackManifest | None = None, device: str = "cpu") -> Any:
    """Load a transformer pack folder as a TransformerCoder (medcode.model.pack calls this with its manifest)."""
    from safetensors.torch import load_file

    from medcode.model.transformer.coder import TransformerCoder
    from medcode.model.transformer.network import LabelAttentionNet, encoder_from_folder

    path = Path(path)
    if manifest is None:
        manifest = read_manifest(path)
        verify_pack(path, manifest)
    if manifest.preset != PRESET:
        raise ModelNotFoundError(f"{path} is a {manifest.preset!r} pack, not a transformer pack")
    labels = [Label.from_json(item) for item in manifest.config.get("labels", [])]
    if not labels:
        raise ModelNotFoundError(f"transformer pack {path} has no label list")
    config = TransformerConfig.from_dict(manifest.config)
    encoder, tokenizer = encoder_from_folder(path / ENCODER_DIR)
    net = LabelAttentionNet(encoder, len(labels))
    try:
        net.load_state_dict(load_file(str(path / WEIGHTS)), strict=True)
    except (OSError, RuntimeError) as exc:
        raise ModelNotFoundError(f"transformer pack {path} has unreadable weights: {exc}") from exc
    coder = TransformerCoder(
        net,
        tokenizer,
        labels,
        config,
        version=manifest.version,
        code_set_version=manifest.code_set_version,
        calibration={k: Calibrator.from_json(v) for k, v in manifest.calibration.items()},
        thresholds={k: TaskThresholds.from_json(v) for k, v in manifest.thresholds.items()},
        device=device,
        metrics=manifest.metrics,
        training_data=manifest.training_data,
        rules=load_rules(manifest.config.get("rules"), path),
    )
    coder._title_index = load_title_index(path)
    fingerprint = manifest.config.get("encoder_fingerprint")
    if isinstance(fingerprint, str) and fingerprint:
        coder._fingerprint = fingerprint  # the weights file's checksum was verified with the manifest
    return coder
