"""The plain-torch BERT forward pass gives the sentence encoder exactly the vectors transformers gives it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from medcode.model.candidates import minibert
from medcode.model.candidates.dense import Encoder, packaged_encoder_path

TEXTS = [
    "Patient with type 2 diabetes mellitus and hypertension.",
    "Denies chest pain.",
    "HTN, DM2 — café résumé",
    "a",
    "The abdominal CT scan showed a 3 cm hypodense lesion in the right hepatic lobe " * 6,
]


def _transformers_model(path: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoModel, AutoTokenizer

    return (
        AutoTokenizer.from_pretrained(str(path), local_files_only=True),
        AutoModel.from_pretrained(str(path), local_files_only=True).float().eval(),
    )


def test_packaged_encoder_runs_without_transformers() -> None:
    assert minibert.supports(packaged_encoder_path())


def test_minibert_matches_transformers_bitwise_without_padding_and_within_float_noise_with_it() -> None:
    path = packaged_encoder_path()
    hf_tok, hf_model = _transformers_model(path)
    tok, model = minibert.load(path)
    ids = tok(TEXTS, truncation=True, max_length=128)["input_ids"]
    assert ids == hf_tok(TEXTS, truncation=True, max_length=128)["input_ids"]
    assert max(len(i) for i in ids) == 128  # the long text was cut
    with torch.inference_mode():
        batch = tok.pad({"input_ids": ids})
        reference = hf_tok.pad({"input_ids": ids}, return_tensors="pt")
        assert torch.equal(batch["input_ids"], reference["input_ids"])
        assert torch.equal(batch["attention_mask"], reference["attention_mask"])
        ours = model(**batch).last_hidden_state
        theirs = hf_model(**reference).last_hidden_state
        mask = batch["attention_mask"].bool()
        # real tokens only go through the linear layers: the products have fewer rows, same values to 1e-7
        assert (ours[mask] - theirs[mask]).abs().max().item() < 1e-5
        assert torch.equal(ours[~mask], torch.zeros_like(ours[~mask]))
        single = tok.pad({"input_ids": ids[:1]})  # no padding: attention without a mask
        assert torch.equal(model(**single).last_hidden_state, hf_model(**single).last_hidden_state)


def test_a_text_gets_the_same_vectors_alone_and_padded_in_a_batch() -> None:
    tok, model = minibert.load(packaged_encoder_path())
    ids = tok(TEXTS, truncation=True, max_length=128)["input_ids"]
    with torch.inference_mode():
        batch = tok.pad({"input_ids": ids})
        together = model(**batch).last_hidden_state
        for i, row in enumerate(ids):
            alone = model(**tok.pad({"input_ids": [row]})).last_hidden_state[0]
            assert (together[i, : len(row)] - alone).abs().max().item() < 1e-5, TEXTS[i]


def test_minibert_in_bfloat16_agrees_with_transformers_in_bfloat16() -> None:
    path = packaged_encoder_path()
    _, hf_model = _transformers_model(path)
    tok, model = minibert.load(path)
    batch = tok.pad(tok(TEXTS, truncation=True, max_length=128))
    with torch.inference_mode():
        ours = model.to(torch.bfloat16)(**batch).last_hidden_state.float()
        theirs = hf_model.to(torch.bfloat16)(**batch).last_hidden_state.float()
    mask = batch["attention_mask"].bool()
    assert torch.allclose(ours[mask], theirs[mask], atol=0.05)


def test_other_architectures_are_left_to_transformers(tmp_path: Path) -> None:
    folder = tmp_path / "enc"
    shutil.copytree(packaged_encoder_path(), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    assert not minibert.supports(folder)  # no weights file
    (folder / "model.safetensors").symlink_to(packaged_encoder_path() / "model.safetensors")
    assert minibert.supports(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    assert not minibert.supports(folder)


def test_encoder_vectors_are_unit_length_and_order_independent() -> None:
    encoder = Encoder(precision="float32")
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = encoder.encode(TEXTS[1:2])
    assert np.allclose(alone[0], vectors[1], atol=1e-5)


def test_encoding_a_sentence_does_not_import_transformers() -> None:
    code = (
        "import sys\n"
        "from medcode.model.candidates.dense import Encoder\n"
        "Encoder(precision='float32').encode(['chest pain'])\n"
        "print('transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_numpy_forward_matches_the_torch_forward_within_float_noise() -> None:
    path = packaged_encoder_path()
    tok, model = minibert.load(path)
    loaded = minibert.load_numpy(path)
    assert loaded is not None
    _, numpy_model = loaded
    ids = tok(TEXTS, truncation=True, max_length=128)["input_ids"]
    batch = tok.pad({"input_ids": ids}, return_tensors="np")
    with torch.inference_mode():
        reference = model(**tok.pad({"input_ids": ids})).last_hidden_state.numpy()
    ours = numpy_model(**batch).last_hidden_state
    mask = batch["attention_mask"].astype(bool)
    assert ours.dtype == np.float32
    assert np.abs(ours[mask] - reference[mask]).max() < 1e-4  # hidden values reach about 6
    single = tok.pad({"input_ids": ids[1:2]}, return_tensors="np")  # no padding: no mask
    with torch.inference_mode():
        one = model(**tok.pad({"input_ids": ids[1:2]})).last_hidden_state.numpy()
    assert np.abs(numpy_model(**single).last_hidden_state - one).max() < 1e-4


def test_numpy_backend_gives_the_torch_vectors_within_float_noise() -> None:
    numpy_encoder = Encoder(precision="float32", backend="numpy")
    ours = numpy_encoder.encode(TEXTS)
    assert numpy_encoder._numpy
    torch_encoder = Encoder(precision="float32")  # packs are read with torch (same answers)
    theirs = torch_encoder.encode(TEXTS)
    assert not torch_encoder._numpy
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_erf_is_exact_to_double_precision() -> None:
    import math

    x = np.r_[np.linspace(-7.0, 7.0, 20001), 0.0, -0.0, 1e-300, 6.0, 100.0]
    assert np.abs(minibert.erf(x) - np.array([math.erf(v) for v in x])).max() < 1e-14
    gelu = minibert.gelu(np.array([-3.0, -1.0, 0.0, 0.5, 2.0], dtype=np.float32))
    expected = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in (-3.0, -1.0, 0.0, 0.5, 2.0)]
    assert gelu.dtype == np.float32 and np.allclose(gelu, expected, rtol=1e-7, atol=1e-9)
