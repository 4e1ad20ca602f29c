"""A BERT encoder forward pass in plain torch, for the sentence encoder's quick start.

Loading all-MiniLM-L6-v2 through `transformers.AutoModel` imports most of transformers and of
`torch.distributed` / `torch._dynamo` / sympy on the way (about 5 s of a 2-core machine's CPU, tens of
seconds when it is busy) before the first sentence is embedded. A BERT encoder is a dozen tensor operations;
this module runs them on the same weights (`model.safetensors`) with the same tokenizer (`tokenizer.json`,
through the `tokenizers` library), so `medcode suggest` embeds its first note after importing torch alone.

`NumpyBert` runs the same operations in numpy (float32) without importing torch (about 2 s of CPU): its
vectors agree with the torch pass within float noise (about 1e-7; `tests/model/test_minibert.py`). That
noise still changes a trained pack's answers (its rankers split on sentence similarities of exactly 1.0,
which only the encoder that embedded the training sentences reproduces), so `Encoder` uses it only when
asked (`backend="numpy"`); packs are read with torch.

It computes what `BertModel(...).last_hidden_state` computes, with the operations transformers' default
(SDPA) attention uses; `tests/model/test_minibert.py` checks the two agree. Folders it cannot read (another
architecture, no `tokenizer.json`, no safetensors) are left to transformers: `supports(path)` says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"
CONFIG = "config.json"


@dataclass(frozen=True, slots=True)
class BertShape:
    layers: int
    heads: int
    hidden: int
    eps: float
    pad_id: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertShape:
        return cls(
            layers=int(config["num_hidden_layers"]),
            heads=int(config["num_attention_heads"]),
            hidden=int(config["hidden_size"]),
            eps=float(config.get("layer_norm_eps", 1e-12)),
            pad_id=int(config.get("pad_token_id", 0) or 0),
        )


def load(path: Path) -> tuple[BertTokenizer, MiniBert]:
    """The tokenizer and the model of a folder `supports` accepts."""
    model = MiniBert(path)
    return BertTokenizer(path, model.shape.pad_id), model


def load_numpy(path: Path) -> tuple[BertTokenizer, NumpyBert] | None:
    """The tokenizer and the numpy model of a folder `supports` accepts; None when its weights are in a
    format numpy cannot hold (bfloat16)."""
    try:
        model = NumpyBert(path)
    except (TypeError, ValueError):
        return None
    return BertTokenizer(path, model.shape.pad_id), model


def supports(path: Path) -> bool:
    """True when `path` holds a plain BERT encoder this module can run (absolute positions, GELU)."""
    path = Path(path)
    if not all((path / name).is_file() for name in (WEIGHTS, TOKENIZER, CONFIG)):
        return False
    try:
        config = json.loads((path / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    plain = (
        config.get("model_type") == "bert"
        and config.get("hidden_act", "gelu") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and not config.get("is_decoder", False)
    )
    if not plain:
        return False
    from safetensors import safe_open

    with safe_open(str(path / WEIGHTS), framework="numpy") as fh:
        names = {k.removeprefix("bert.") for k in fh.keys()}  # noqa: SIM118 (safe_open is no mapping)
    layers = int(config.get("num_hidden_layers", 0))
    return all(name in names for name in _weight_names(layers))


def _weight_names(layers: int) -> list[str]:
    names = [
        f"embeddings.{e}.weight" for e in ("word_embeddings", "position_embeddings", "token_type_embeddings")
    ]
    names += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for i in range(layers):
        for part in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "attention.output.LayerNorm",
            "intermediate.dense",
            "output.dense",
            "output.LayerNorm",
        ):
            names += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
    return names


class BertTokenizer:
    """`tokenizer.json` through the `tokenizers` library, called as the encoder calls a transformers
    tokenizer: `tok(texts, truncation=True, max_length=N)["input_ids"]` and `tok.pad({"input_ids": ...})`."""

    def __init__(self, path: Path, pad_id: int = 0) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(Path(path) / TOKENIZER))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.pad_id = pad_id

    def __call__(
        self, texts: list[str], truncation: bool = False, max_length: int | None = None
    ) -> dict[str, list[list[int]]]:
        if truncation and max_length:
            self._tokenizer.enable_truncation(max_length=max_length)
        else:
            self._tokenizer.no_truncation()
        return {"input_ids": [list(e.ids) for e in self._tokenizer.encode_batch(texts)]}

    def pad(self, batch: dict[str, list[list[int]]], return_tensors: str = "pt") -> dict[str, Any]:
        """Right-padded `input_ids` and the `attention_mask` (1 for a token, 0 for padding), as tensors
        ("pt") or numpy arrays ("np")."""
        rows = batch["input_ids"]
        if return_tensors == "np":
            width = max((len(r) for r in rows), default=0)
            ids_np = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask_np = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                ids_np[i, : len(row)] = row
                mask_np[i, : len(row)] = 1
            return {"input_ids": ids_np, "attention_mask": mask_np}
        import torch

        width = max((len(r) for r in rows), default=0)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


@dataclass(frozen=True, slots=True)
class BertOutput:
    last_hidden_state: Any


class MiniBert:
    """BERT's encoder stack over weights read from a folder, called as the encoder calls a transformers
    model: `model(input_ids=..., attention_mask=...).last_hidden_state`."""

    def __init__(self, path: Path) -> None:
        import torch
        from safetensors.torch import load_file

        path = Path(path)
        self.shape = BertShape.from_config(json.loads((path / CONFIG).read_text()))
        weights = load_file(str(path / WEIGHTS))
        # checkpoints name the encoder "bert.*" (from a task head) or bare; both are read
        w = {k.removeprefix("bert."): v.float() for k, v in weights.items()}
        # each layer's query, key and value projections as one (3 x hidden, hidden) product: the same
        # values as three products (each output is the same dot product), one pass over the tokens
        for i in range(self.shape.layers):
            p = f"encoder.layer.{i}.attention.self."
            for part in ("weight", "bias"):
                w[f"{p}qkv.{part}"] = torch.cat([w.pop(f"{p}{n}.{part}") for n in ("query", "key", "value")])
        self.w = w
        self.dtype = self.w["embeddings.word_embeddings.weight"].dtype

    def to(self, dtype: Any) -> MiniBert:
        self.w = {k: v.to(dtype) if v.is_floating_point() else v for k, v in self.w.items()}
        self.dtype = dtype
        return self

    def __call__(self, input_ids: Any, attention_mask: Any) -> BertOutput:
        return BertOutput(self.forward(input_ids, attention_mask))

    def forward(self, ids: Any, mask: Any) -> Any:
        """The last hidden state of a right-padded batch (padding positions hold zeros).

        The token-wise work (every linear layer, layer norm and GELU: nearly all of the pass) runs on the
        batch's real tokens only, gathered into one (tokens, hidden) matrix; only attention sees the padded
        (batch, length) layout. A note's texts are a few mention words and sentences of up to 128 tokens,
        so a padded batch is mostly padding (2.8 padded tokens per real one on CodiEsp dev): this halves the
        encoder's time. A real token's vector is the padded pass's within float noise (a product over fewer
        rows may take another kernel, about 1e-7); a batch without padding is computed exactly as before."""
        import torch
        import torch.nn.functional as F

        w, s = self.w, self.shape
        batch, length = ids.shape
        positions = torch.arange(length).unsqueeze(0)
        x = F.embedding(ids, w["embeddings.word_embeddings.weight"])
        x = x + F.embedding(torch.zeros_like(ids), w["embeddings.token_type_embeddings.weight"])
        x = x + F.embedding(positions, w["embeddings.position_embeddings.weight"])
        x = self._norm(x, "embeddings.LayerNorm")
        # no padding: no mask at all (what transformers passes to SDPA then); else a boolean key mask
        padded = not bool(mask.all())
        attn_mask = mask.bool()[:, None, None, :].expand(batch, 1, length, length) if padded else None
        keep = mask.reshape(-1).nonzero().squeeze(1) if padded else None
        x = x.reshape(batch * length, s.hidden)
        if keep is not None:
            x = x[keep]
        head = s.hidden // s.heads

        # the padded layout attention reads, zeros at padding (only real tokens' rows are ever written)
        grid = x.new_zeros(batch * length, 3 * s.hidden) if keep is not None else None
        for i in range(s.layers):
            p = f"encoder.layer.{i}."
            qkv = self._linear(x, p + "attention.self.qkv")
            if grid is not None:
                qkv = grid.index_copy_(0, keep, qkv)
            q, k, v = qkv.view(batch, length, 3, s.heads, head).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=head**-0.5)
            a = a.transpose(1, 2).reshape(batch * length, -1)
            if keep is not None:
                a = a[keep]
            x = self._norm(
                self._linear(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
            )
            h = F.gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        if keep is None:
            return x.view(batch, length, s.hidden)
        return x.new_zeros(batch * length, s.hidden).index_copy_(0, keep, x).view(batch, length, s.hidden)

    def _linear(self, x: Any, name: str) -> Any:
        import torch.nn.functional as F

        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def _norm(self, x: Any, name: str) -> Any:
        import torch.nn.functional as F

        return F.layer_norm(
            x, (self.shape.hidden,), self.w[name + ".weight"], self.w[name + ".bias"], self.shape.eps
        )


class NumpyBert:
    """`MiniBert`'s forward pass in numpy, float32: `model(input_ids=..., attention_mask=...)` with numpy
    arrays gives `.last_hidden_state` as a float32 array."""

    def __init__(self, path: Path) -> None:
        from safetensors.numpy import load_file

        path = Path(path)
        self.shape = BertShape.from_config(json.loads((path / CONFIG).read_text()))
        weights = load_file(str(path / WEIGHTS))
        self.w = {
            k.removeprefix("bert."): np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()
        }
        # F.linear's weight is (out, in): stored transposed once, so each product is x @ w
        self.wt = {k: np.ascontiguousarray(v.T) for k, v in self.w.items() if v.ndim == 2}

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> BertOutput:
        return BertOutput(self.forward(np.asarray(input_ids), np.asarray(attention_mask)))

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, s = self.w, self.shape
        batch, length = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)]
        x = x + w["embeddings.position_embeddings.weight"][np.arange(length)][None, :, :]
        x = self._norm(x, "embeddings.LayerNorm")
        # padding keys get -inf before the softmax (what SDPA does with a boolean mask)
        bias = None
        if not bool(mask.all()):
            bias = np.where(mask.astype(bool), np.float32(0.0), np.float32(-np.inf))[:, None, None, :]
        head = s.hidden // s.heads
        scale = np.float32(head**-0.5)
        for i in range(s.layers):
            p = f"encoder.layer.{i}."

            def split(t: np.ndarray) -> np.ndarray:
                # contiguous heads: numpy's matmul hands stacked products to BLAS only in that layout
                return np.ascontiguousarray(t.reshape(batch, length, s.heads, head).transpose(0, 2, 1, 3))

            q = split(self._linear(x, p + "attention.self.query"))
            k = split(self._linear(x, p + "attention.self.key"))
            v = split(self._linear(x, p + "attention.self.value"))
            scores = (q * scale) @ k.transpose(0, 1, 3, 2)
            if bias is not None:
                scores = scores + bias
            scores = scores - scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            a = np.ascontiguousarray((scores @ v).transpose(0, 2, 1, 3)).reshape(batch, length, s.hidden)
            x = self._norm(
                self._linear(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
            )
            h = gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        weight = self.wt[name + ".weight"]
        out = np.ascontiguousarray(x).reshape(-1, x.shape[-1]) @ weight  # one 2-D product (BLAS)
        out += self.w[name + ".bias"]
        return out.reshape(*x.shape[:-1], weight.shape[1])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=-1, keepdims=True)
        out = centred / np.sqrt(var + np.float32(self.shape.eps))
        out *= self.w[name + ".weight"]
        out += self.w[name + ".bias"]
        return out


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x), in float32 (erf to about 1e-13, see `erf`)."""
    return (x * (0.5 + 0.5 * erf(x.astype(np.float64) * _SQRT_HALF))).astype(np.float32)


_SQRT_HALF = 0.5**0.5
_STEP = 1.0 / 64.0
_LIMIT = 6.0


def _erf_tables() -> tuple[np.ndarray, np.ndarray]:
    """erf at the grid points k/64 of [0, 6] and the Taylor coefficients of erf around each point:
    erf(x0 + d) = erf(x0) + sum_n c_n d^(n+1), c_n = 2/sqrt(pi) exp(-x0^2) H_n(-x0) / (n+1)!
    (H_n the physicists' Hermite polynomials); six terms leave an error under 1e-13 for |d| <= 1/128."""
    import math

    grid = np.arange(0, int(_LIMIT / _STEP) + 1) * _STEP
    values = np.array([math.erf(v) for v in grid])
    y = -grid
    hermite = [np.ones_like(y), 2 * y]
    for n in range(1, 5):
        hermite.append(2 * y * hermite[n] - 2 * n * hermite[n - 1])
    weight = 2.0 / math.sqrt(math.pi) * np.exp(-grid * grid)
    coeffs = np.stack([weight * hermite[n] / math.factorial(n + 1) for n in range(6)])
    return values, coeffs


_ERF_VALUES, _ERF_COEFFS = _erf_tables()


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of a float64 array, to about 1e-13 (numpy has none; scipy's import costs time):
    a table of erf on a 1/64 grid and a six-term Taylor expansion around the nearest grid point."""
    a = np.minimum(np.abs(x), _LIMIT)
    k = np.rint(a * (1.0 / _STEP)).astype(np.intp)
    d = a - k * _STEP
    c = _ERF_COEFFS
    poly = c[5][k]
    for n in range(4, -1, -1):
        poly = poly * d + c[n][k]
    return np.copysign(_ERF_VALUES[k] + poly * d, x)
