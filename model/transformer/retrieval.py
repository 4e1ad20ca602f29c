"""Bi-encoder retrieval of code descriptions: every billable ICD-10-CM title embedded once.

A saved transformer pack carries its title embeddings (`save_title_index` / `load_title_index`, float16:
~57 MB for 74k codes), so loading it never embeds the titles again. Training may keep them in a cache
folder it names (`build_title_index(..., cache_dir=...)`), keyed by the code-set version, the encoder
weights (a fine-tuned encoder embeds titles differently) and the code list.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from medcode.data.cache import read_cache, write_cache
from medcode.data.errors import ModelNotFoundError
from medcode.data.icd10cm import load_icd10cm
from medcode.model.transformer.codes import billable_diagnosis_codes
from medcode.model.transformer.network import LabelAttentionNet, embed_many

log = logging.getLogger(__name__)

_CACHE = "title-embedding cache"
"""What the cache's warnings call it (`data.cache`)."""

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


def cache_file(
    cache_dir: Path, code_set_version: str, encoder_fingerprint: str, codes: list[str], max_tokens: int
) -> Path:
    digest = hashlib.sha256()
    for part in (str(CACHE_FORMAT), code_set_version, encoder_fingerprint, str(max_tokens), *codes):
        digest.update(part.encode())
        digest.update(b"\0")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", code_set_version).strip("-").lower()
    return cache_dir / "transformer" / f"titles-{slug}-{digest.hexdigest()[:20]}.npz"


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
    cache_dir: Path | None = None,
) -> TitleIndex:
    """The billable codes' description embeddings, computed now (read from / written to `cache_dir` when
    one is given), rounded to float16 as a pack stores them."""
    pairs = billable_diagnosis_codes(load_icd10cm(), restrict, skip_later_encounters)
    codes = [c for c, _ in pairs]
    titles = [t for _, t in pairs]
    file = (
        cache_file(cache_dir, code_set_version, encoder_fingerprint, codes, max_tokens) if cache_dir else None
    )
    cached = read_cache(file, _read_embeddings, _CACHE) if file is not None else None
    if cached is not None and cached.shape == (len(codes), net.hidden):
        return TitleIndex(codes, titles, cached)
    log.info("embedding %d code titles", len(codes))
    emb = embed_many(
        net, tokenizer, titles, max_tokens, device, batch_size=batch_size, progress=len(codes) > 2000
    )
    if file is not None:
        half = emb.numpy().astype(np.float16)
        write_cache(file, lambda handle: np.savez(handle, embeddings=half), _CACHE)
    return TitleIndex(codes, titles, emb.half().float())


def _read_embeddings(handle: BinaryIO) -> Tensor:
    with np.load(handle, allow_pickle=False) as data:
        return torch.from_numpy(data["embeddings"].astype(np.float32))


TITLES_FILE = "titles.npz"
"""The title embeddings inside a transformer pack (codes, titles, float16 embeddings)."""


def save_title_index(index: TitleIndex, folder: Path) -> None:
    np.savez(
        Path(folder) / TITLES_FILE,
        codes=np.asarray(index.codes, dtype=str),
        titles=np.asarray(index.titles, dtype=str),
        embeddings=index.embeddings.detach().cpu().numpy().astype(np.float16),
    )


def load_title_index(folder: Path) -> TitleIndex | None:
    """The title embeddings a pack carries (None for a pack saved before they were stored)."""
    file = Path(folder) / TITLES_FILE
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as data:
            codes = [str(c) for c in data["codes"]]
            titles = [str(t) for t in data["titles"]]
            emb = torch.from_numpy(data["embeddings"].astype(np.float32))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(f"model pack {folder} has unreadable title embeddings: {exc}") from exc
    if emb.shape[0] != len(codes):
        raise ModelNotFoundError(
            f"model pack {folder}: {TITLES_FILE} holds {emb.shape[0]} rows for {len(codes)} codes"
        )
    return TitleIndex(codes, titles, emb)
