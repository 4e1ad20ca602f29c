"""Bi-encoder retrieval of code descriptions: every billable ICD-10-CM title embedded once, cached.

The cache lives under `get_settings().cache_dir / "transformer"`, keyed by the code-set version, the
encoder weights (a fine-tuned encoder embeds titles differently) and the code list, so a new model pack
or a new fiscal year never reads stale vectors. Vectors are stored as float16 (~57 MB for 74k codes).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from medcode.model.transformer.codes import billable_diagnosis_codes
from medcode.model.transformer.network import LabelAttentionNet, embed_many
from medcode.settings import get_settings

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass
class TitleIndex:
    """Unit-length description embeddings of a list of codes."""

    codes: list[str]
    titles: list[str]
    embeddings: Tensor
    """[n, H] float32, unit rows."""

    def __post_init__(self) -> None:
        self.position = {code: i for i, code in enumerate(self.codes)}

    def __len__(self) -> int:
        return len(self.codes)

    def mask_of(self, codes: set[str]) -> Tensor:
        """[n] True for the index rows whose code is in `codes`."""
        mask = torch.zeros(len(self.codes), dtype=torch.bool)
        rows = [self.position[c] for c in codes if c in self.position]
        if rows:
            mask[torch.tensor(rows)] = True
        return mask


def cache_file(code_set_version: str, encoder_fingerprint: str, codes: list[str], max_tokens: int) -> Path:
    digest = hashlib.sha256()
    for part in (str(CACHE_FORMAT), code_set_version, encoder_fingerprint, str(max_tokens), *codes):
        digest.update(part.encode())
        digest.update(b"\0")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", code_set_version).strip("-").lower()
    return get_settings().cache_dir / "transformer" / f"titles-{slug}-{digest.hexdigest()[:20]}.npz"


def build_title_index(
    net: LabelAttentionNet,
    tokenizer: Any,
    *,
    code_set_version: str,
    encoder_fingerprint: str,
    restrict: list[str] | None,
    max_tokens: int,
    skip_later_encounters: bool = False,
    device: torch.device | str,
    batch_size: int = 256,
) -> TitleIndex:
    """The billable codes' description embeddings, read from the cache or computed (and cached) now."""
    pairs = billable_diagnosis_codes(restrict, skip_later_encounters)
    codes = [c for c, _ in pairs]
    titles = [t for _, t in pairs]
    file = cache_file(code_set_version, encoder_fingerprint, codes, max_tokens)
    if file.is_file():
        try:
            with np.load(file, allow_pickle=False) as data:
                emb = torch.from_numpy(data["embeddings"].astype(np.float32))
            if emb.shape == (len(codes), net.hidden):
                return TitleIndex(codes, titles, emb)
        except (OSError, ValueError, KeyError):
            log.warning("ignoring an unreadable title-embedding cache file %s", file)
    log.info("embedding %d code titles (cached in %s)", len(codes), file.parent)
    emb = embed_many(
        net, tokenizer, titles, max_tokens, device, batch_size=batch_size, progress=len(codes) > 2000
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp.npz")
    np.savez(tmp, embeddings=emb.numpy().astype(np.float16))
    tmp.replace(file)
    return TitleIndex(codes, titles, emb.half().float())
