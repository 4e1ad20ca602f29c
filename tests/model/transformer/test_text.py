from __future__ import annotations

from typing import Any

import pytest

from medcode.data.types import Assertion, Document, Encounter, Mention
from medcode.model.transformer.text import encode_encounter, split_sentences


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from medcode.model.transformer.network import packaged_encoder_path

    return AutoTokenizer.from_pretrained(packaged_encoder_path(), local_files_only=True)


def _encounter(*texts: str) -> Encounter:
    return Encounter(
        encounter_id="e1", documents=[Document(document_id=f"d{i}", text=t) for i, t in enumerate(texts)]
    )


def test_split_sentences_offsets_index_the_text() -> None:
    text = "  Fever since Monday. No cough.\nType 2 diabetes on metformin.\n\n"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "Fever since Monday.",
        "No cough.",
        "Type 2 diabetes on metformin.",
    ]


def test_tokens_keep_character_offsets_into_each_document(tokenizer: Any) -> None:
    enc = encode_encounter(_encounter("Chest pain at rest.", "Known hypertension."), tokenizer, 16, 100)
    words = [
        ["Chest pain at rest.", "Known hypertension."][d][a:b]
        for d, a, b in zip(enc.token_doc, enc.token_start, enc.token_end, strict=True)
    ]
    assert words[:3] == ["Chest", "pain", "at"]
    assert "hypertension" in "".join(words)
    assert {enc.sentences[s].doc for s in enc.token_sentence} == {0, 1}


def test_chunks_respect_length_and_positions(tokenizer: Any) -> None:
    text = "\n".join(f"Sentence number {i} mentions pneumonia of the left lower lobe." for i in range(20))
    enc = encode_encounter(_encounter(text), tokenizer, chunk_tokens=32, max_tokens=1000)
    assert len(enc.chunks) > 3
    assert all(
        len(c) <= 32 and c[0] == tokenizer.cls_token_id and c[-1] == tokenizer.sep_token_id
        for c in enc.chunks
    )
    # every text token sits where `positions` says it does
    flat_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert [enc.chunks[c][p] for c, p in enc.positions] == flat_ids
    # chunks end on sentence boundaries when a boundary is in their second half
    firsts = {
        enc.positions.index(next(p for p in enc.positions if p[0] == c)) for c in range(len(enc.chunks))
    }
    assert all(i == 0 or enc.token_sentence[i] != enc.token_sentence[i - 1] for i in firsts)


def test_long_note_is_cut_to_max_tokens(tokenizer: Any) -> None:
    enc = encode_encounter(_encounter("word " * 500), tokenizer, chunk_tokens=64, max_tokens=100)
    assert enc.n_tokens == 100
    assert enc.truncated


def test_non_present_mentions_are_masked(tokenizer: Any) -> None:
    text = "No asthma. Diabetes present."
    negated = Mention(document_id="d0", start=3, end=9, text="asthma", assertion=Assertion(negated=True))
    present = Mention(document_id="d0", start=11, end=19, text="Diabetes")
    enc = encode_encounter(
        _encounter(text), tokenizer, 64, 100, mentions=[negated, present], mask_non_present=True
    )
    ids = [enc.chunks[c][p] for c, p in enc.positions]
    masked = [
        text[a:b]
        for a, b, t in zip(enc.token_start, enc.token_end, ids, strict=True)
        if t == tokenizer.mask_token_id
    ]
    assert masked == ["asthma"]
    plain = encode_encounter(_encounter(text), tokenizer, 64, 100, mentions=[negated], mask_non_present=False)
    assert tokenizer.mask_token_id not in [plain.chunks[c][p] for c, p in plain.positions]
