"""A BERT encoder forward pass in plain torch, for the sentence encoder's quick start.

Loading all-MiniLM-L6-v2 through `transformers.AutoModel` imports most of transformers and of
`torch.distributed` / `torch._dynamo` / sympy on the way (about 5 s of a 2-core machine's CPU, tens of
seconds when it is busy) before the first sentence is embedded. A BERT encoder is a dozen tensor operations;
this module runs them on the same weights (`model.safetensors`) with the same tokenizer (`tokenizer.json`,
through the `tokenizers` library), so `medcode suggest` embeds its first note after importing torch alone.

It computes what `BertModel(...).last_hidden_state` computes, with the operations transformers' default
(SDPA) attention uses; `tests/model/test_minibert.py` checks the two agree. Folders it cannot read (another
architecture, no `tokenizer.json`, no safetensors) are left to transformers: `supports(path)` says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    with safe_open(str(path / WEIGHTS), framework="pt") as fh:
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
        """Right-padded `input_ids` and the `attention_mask` (1 for a token, 0 for padding), as tensors."""
        import torch

        rows = batch["input_ids"]
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
        from safetensors.torch import load_file

        path = Path(path)
        self.shape = BertShape.from_config(json.loads((path / CONFIG).read_text()))
        weights = load_file(str(path / WEIGHTS))
        # checkpoints name the encoder "bert.*" (from a task head) or bare; both are read
        self.w = {k.removeprefix("bert."): v.float() for k, v in weights.items()}
        self.dtype = self.w["embeddings.word_embeddings.weight"].dtype

    def to(self, dtype: Any) -> MiniBert:
        self.w = {k: v.to(dtype) if v.is_floating_point() else v for k, v in self.w.items()}
        self.dtype = dtype
        return self

    def __call__(self, input_ids: Any, attention_mask: Any) -> BertOutput:
        return BertOutput(self.forward(input_ids, attention_mask))

    def forward(self, ids: Any, mask: Any) -> Any:
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
        attn_mask = (
            None if bool(mask.all()) else mask.bool()[:, None, None, :].expand(batch, 1, length, length)
        )
        head = s.hidden // s.heads
        for i in range(s.layers):
            p = f"encoder.layer.{i}."

            def split(t: Any) -> Any:
                return t.view(batch, length, -1, head).transpose(1, 2)

            q = split(self._linear(x, p + "attention.self.query"))
            k = split(self._linear(x, p + "attention.self.key"))
            v = split(self._linear(x, p + "attention.self.value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=head**-0.5)
            a = a.transpose(1, 2).contiguous().reshape(batch, length, -1).contiguous()
            x = self._norm(
                self._linear(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
            )
            h = F.gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def _linear(self, x: Any, name: str) -> Any:
        import torch.nn.functional as F

        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def _norm(self, x: Any, name: str) -> Any:
        import torch.nn.functional as F

        return F.layer_norm(
            x, (self.shape.hidden,), self.w[name + ".weight"], self.w[name + ".bias"], self.shape.eps
        )
