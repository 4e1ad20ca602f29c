"""The sentence encoder (packaged all-MiniLM-L6-v2) and its batching."""

from __future__ import annotations

import numpy as np
import pytest

from medcode.model.candidates.dense import DenseCodeIndex, Encoder, resolve_precision, steady


def test_batches_cover_every_text_once_shortest_first_within_the_token_budget() -> None:
    encoder = Encoder(token_budget=40, max_batch=4)
    lengths = [30, 3, 5, 12, 4, 3, 20, 6, 8]
    batches = encoder.batches(lengths)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    for batch in batches:
        assert len(batch) <= 4
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= 40 or len(batch) == 1


def test_a_text_longer_than_the_budget_gets_a_batch_of_its_own() -> None:
    assert Encoder(token_budget=10).batches([50, 2, 2]) == [[1, 2], [0]]


def test_unknown_precision_is_refused_and_explicit_ones_are_kept() -> None:
    with pytest.raises(ValueError, match="precision"):
        Encoder(precision="float16")
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"
    assert resolve_precision("auto") == "float32"  # the format packs store their vectors in


def test_bfloat16_vectors_agree_with_float32_and_batching_does_not_change_them() -> None:
    texts = [
        "type 2 diabetes mellitus with diabetic chronic kidney disease",
        "fever",
        "The patient was admitted with community-acquired pneumonia of the right lower lobe.",
        "acute appendicitis",
    ]
    one_by_one = np.vstack([Encoder(precision="float32").encode([t]) for t in texts])
    batched = Encoder(precision="float32", token_budget=64).encode(texts)
    assert np.allclose(one_by_one, batched, atol=1e-4)
    low = Encoder(precision="bfloat16").encode(texts)
    assert np.allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-4)
    assert (low * batched).sum(axis=1).min() > 0.995
    # the meaning survives: the pneumonia sentence is nearest to itself, not to fever
    assert int(np.argmax(low @ batched[2])) == 2


def test_code_vector_is_the_unit_mean_of_the_code_names() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    index = DenseCodeIndex(["A00", "A00", "B00"], ["a", "b", "c"], vectors)
    mean = index.code_vector("A00")
    assert mean is not None and np.allclose(mean, [2**-0.5, 2**-0.5])
    assert index.code_vector("A00") is mean
    assert index.code_vector("Z99") is None


def test_code_similarities_match_one_code_at_a_time() -> None:
    from medcode.data.types import Document, Encounter
    from medcode.model.candidates.generate import EncounterView
    from medcode.model.trained.classifier import DocScores
    from medcode.model.trained.features import code_similarities, doc_context

    rng = np.random.default_rng(0)
    unit = rng.normal(size=(6, 8)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    sentences, document, codes = unit[:3], unit[3], [unit[4], None, unit[5]]
    view = EncounterView(
        encounter=Encounter(encounter_id="e", documents=[Document(document_id="d", text="x")]),
        mentions=[],
        sentences=[],
        sentence_vectors=sentences,
    )
    ctx = doc_context(DocScores({}, {}, {}), document)
    got = code_similarities(view, ctx, codes)
    assert got[1] == (-1.0, -1.0)
    for k in (0, 2):
        vector = codes[k]
        assert vector is not None
        expected = (round(float((sentences @ vector).max()), 4), round(float(document @ vector), 4))
        assert got[k] == pytest.approx(expected, abs=1e-6)
    no_text = EncounterView(encounter=view.encounter, mentions=[], sentences=[])
    assert code_similarities(no_text, doc_context(DocScores({}, {}, {}), None), codes)[0] == (-1.0, -1.0)


def test_one_thread_limits_the_ranker_runtime_and_restores_it() -> None:
    import sklearn.ensemble  # noqa: F401  (loads its OpenMP runtime)
    from threadpoolctl import threadpool_info

    from medcode.model.trained.coder import one_thread

    def sklearn_threads() -> list[int]:
        return [
            lib["num_threads"]
            for lib in threadpool_info()
            if lib["user_api"] == "openmp" and "scikit_learn" in lib["filepath"]
        ]

    before = sklearn_threads()
    with one_thread("openmp"):
        assert sklearn_threads() and all(n == 1 for n in sklearn_threads())
    assert sklearn_threads() == before


def test_steady_similarities_make_an_exact_match_exactly_one_whatever_the_float_noise() -> None:
    noisy = np.array([0.99999994, 1.0000001, 0.61234567, -0.2], dtype=np.float32)
    assert steady(noisy).tolist() == pytest.approx([1.0, 1.0, 0.6123, -0.2], abs=1e-7)
    assert steady(noisy)[0] == steady(np.float32(1.0))


def test_search_in_numpy_gives_the_hits_of_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import torch  # noqa: F401  (the torch path runs when torch is loaded)

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codes = [f"C{i // 2:02d}" for i in range(40)]  # two names per code
    index = DenseCodeIndex(codes, [f"name {i}" for i in range(40)], vectors)
    queries = np.vstack([vectors[3], vectors[17] + 1e-7, rng.normal(size=8).astype(np.float32)])
    with_torch = index.search(queries, k=5)
    monkeypatch.delitem(sys.modules, "torch")
    with_numpy = index.search(queries, k=5)
    assert with_numpy == with_torch
    assert with_numpy[0][0].code == "C01" and with_numpy[0][0].score == 1.0
    for hits in with_numpy:
        assert len({h.code for h in hits}) == len(hits) == 5
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_numpy_backend_loads_no_torch_and_agrees_with_torch_after_steady() -> None:
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from medcode.model.candidates.dense import Encoder, steady\n"
        "texts = ['acute appendicitis', 'The patient denied chest pain.', 'type 2 diabetes mellitus']\n"
        "v = Encoder(precision='auto', backend='numpy').encode(texts)\n"
        "assert 'torch' not in sys.modules, 'numpy backend imported torch'\n"
        "np.save(sys.argv[1], v)\n"
    )
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "v.npy"
        subprocess.run([sys.executable, "-c", script, str(out)], check=True)
        numpy_vectors = np.load(out)
    texts = ["acute appendicitis", "The patient denied chest pain.", "type 2 diabetes mellitus"]
    torch_vectors = Encoder(precision="float32").encode(texts)
    assert np.abs(numpy_vectors - torch_vectors).max() < 1e-5
    assert (steady(numpy_vectors @ torch_vectors.T).diagonal() == 1.0).all()
