"""From an encounter to encoder input: sentences, tokens with character offsets, chunks, masked mentions.

Pure functions over a tokenizer (any Hugging Face *fast* tokenizer with offset mapping); no torch here.
Every text token keeps (document index, start, end) into the document text as received, so attention
weights map back to evidence spans with exact offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from medcode.data.types import Encounter, Mention
from medcode.model.text.sentences import sentence_spans

log = logging.getLogger(__name__)

_CHARS_PER_TOKEN_CAP = 12
"""Text beyond max_tokens * this many characters is not even tokenized (it would be cut anyway)."""


@dataclass(frozen=True)
class Span:
    """A character span of one document of the encounter (document given by its index)."""

    doc: int
    start: int
    end: int


@dataclass
class EncodedEncounter:
    """One encounter ready for the encoder."""

    chunks: list[list[int]]
    """Token ids per chunk, each starting with [CLS] and ending with [SEP]."""
    positions: list[tuple[int, int]]
    """For each text token, in reading order: (chunk index, position inside the chunk)."""
    token_doc: list[int]
    token_start: list[int]
    token_end: list[int]
    token_sentence: list[int]
    """Index into `sentences` of the sentence holding each text token."""
    sentences: list[Span]
    mentions: list[tuple[int, Mention]] = field(default_factory=list)
    """Mentions of the text pipeline with their document index (empty when it is not installed)."""
    truncated: bool = False

    @property
    def n_tokens(self) -> int:
        return len(self.positions)


class Tokenizer(Protocol):
    cls_token_id: Any
    sep_token_id: Any
    mask_token_id: Any

    def __call__(self, text: str, **kwargs: Any) -> Any: ...


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of a text: `model.text.sentences.sentence_spans`."""
    return sentence_spans(text)


def encode_encounter(
    encounter: Encounter,
    tokenizer: Tokenizer,
    chunk_tokens: int,
    max_tokens: int,
    mentions: Sequence[Mention] = (),
    mask_non_present: bool = False,
) -> EncodedEncounter:
    """Tokenize every document, keep at most `max_tokens` text tokens, cut them into chunks.

    Chunks end at a sentence boundary when one falls in their second half, so a sentence is rarely split.
    With `mask_non_present`, tokens inside negated, family or hypothetical mentions become [MASK].
    """
    if chunk_tokens < 8:
        raise ValueError("chunk_tokens must be at least 8")
    doc_index = {d.document_id: i for i, d in enumerate(encounter.documents)}
    ids: list[int] = []
    token_doc: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    token_sentence: list[int] = []
    sentences: list[Span] = []
    truncated = False
    for di, document in enumerate(encounter.documents):
        if len(ids) >= max_tokens:
            truncated = truncated or bool(document.text.strip())
            continue
        text = document.text[: max_tokens * _CHARS_PER_TOKEN_CAP]
        truncated = truncated or len(text) < len(document.text)
        doc_sentences = split_sentences(text)
        if not doc_sentences:
            continue
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        first_sentence = len(sentences)
        sentences.extend(Span(di, a, b) for a, b in doc_sentences)
        si = 0
        for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            if b <= a:
                continue
            while si + 1 < len(doc_sentences) and a >= doc_sentences[si][1]:
                si += 1
            ids.append(int(tid))
            token_doc.append(di)
            starts.append(int(a))
            ends.append(int(b))
            token_sentence.append(first_sentence + si)
            if len(ids) >= max_tokens:
                truncated = truncated or b < len(document.text.rstrip())
                break
    kept: list[tuple[int, Mention]] = []
    for m in mentions:
        index = doc_index.get(m.document_id)
        if index is not None:
            kept.append((index, m))
    if mask_non_present and kept:
        ids = _mask_mentions(ids, token_doc, starts, ends, kept, int(tokenizer.mask_token_id))
    chunks, positions = _chunk(
        ids, token_sentence, chunk_tokens, int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    )
    if truncated:
        log.info("encounter %s cut to %d tokens", encounter.encounter_id, max_tokens)
    return EncodedEncounter(
        chunks=chunks,
        positions=positions,
        token_doc=token_doc,
        token_start=starts,
        token_end=ends,
        token_sentence=token_sentence,
        sentences=sentences,
        mentions=kept,
        truncated=truncated,
    )


def _mask_mentions(
    ids: list[int],
    token_doc: list[int],
    starts: list[int],
    ends: list[int],
    mentions: Sequence[tuple[int, Mention]],
    mask_id: int,
) -> list[int]:
    hidden = [(di, m.start, m.end) for di, m in mentions if not m.assertion.is_present]
    if not hidden:
        return ids
    out = list(ids)
    for i in range(len(out)):
        for di, a, b in hidden:
            if token_doc[i] == di and starts[i] < b and ends[i] > a:
                out[i] = mask_id
                break
    return out


def _chunk(
    ids: list[int], token_sentence: list[int], chunk_tokens: int, cls_id: int, sep_id: int
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    body = chunk_tokens - 2
    chunks: list[list[int]] = []
    positions: list[tuple[int, int]] = []
    start = 0
    n = len(ids)
    while start < n:
        end = min(start + body, n)
        if end < n:
            for cut in range(end, start + body // 2, -1):
                if token_sentence[cut] != token_sentence[cut - 1]:
                    end = cut
                    break
        ci = len(chunks)
        chunks.append([cls_id, *ids[start:end], sep_id])
        positions.extend((ci, 1 + k) for k in range(end - start))
        start = end
    return chunks, positions


def default_mentions(encounter: Encounter) -> list[Mention]:
    """Mentions of every document from the project's extractor (model.mentions: the text pipeline, or its
    clause-based fallback when model.text is not installed)."""
    extract = _extractor()
    found: list[Mention] = []
    for document in encounter.documents:
        found.extend(extract(document.text, document.document_id))
    return found


@lru_cache(maxsize=1)
def _extractor() -> Callable[[str, str], list[Mention]]:
    from medcode.model.mentions import default_extractor

    return default_extractor()
