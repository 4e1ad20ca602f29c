"""The code-linking encoder: training pairs, a short fine-tune, the pack round-trip and the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medcode.data.codesystems import CodeInfo
from medcode.data.types import Document, Encounter, Gold, Mention
from medcode.model.candidates.dense import (
    DenseCodeIndex,
    Encoder,
    load_code_indexes,
    load_encoder,
    save_code_indexes,
)
from medcode.model.catalog import CM, CodeCatalog, Term
from medcode.model.runtime import Runtime
from medcode.training.linking import (
    LinkConfig,
    LinkingJob,
    LinkPair,
    catalog_pairs,
    code_names,
    evidence_pairs,
    fine_tune,
    heldout_index_pairs,
    is_heldout,
    linked_encoder,
)

CODES = {
    "I21.9": "Acute myocardial infarction, unspecified",
    "I21.4": "Non-ST elevation (NSTEMI) myocardial infarction",
    "J18.9": "Pneumonia, unspecified organism",
    "J18.1": "Lobar pneumonia, unspecified organism",
    "E11.9": "Type 2 diabetes mellitus without complications",
    "E11.65": "Type 2 diabetes mellitus with hyperglycemia",
    "N39.0": "Urinary tract infection, site not specified",
    "N39.41": "Urge incontinence",
}
TERMS = [
    ("heart attack", "I21.9", "index"),
    ("NSTEMI", "I21.4", "inclusion"),
    ("lung infection", "J18.9", "synonym"),
    ("lobar pneumonia", "J18.1", "index"),
    ("adult onset sugar diabetes", "E11.9", "synonym"),
    ("diabetes type two high blood sugar", "E11.65", "index"),
    ("bladder infection", "N39.0", "index"),
    ("urge leak of urine", "N39.41", "neoplasm"),
]


def _catalog() -> CodeCatalog:
    infos = [CodeInfo(CM, code, title, True, 2, "9", code[:3]) for code, title in CODES.items()]
    terms = [Term(CM, code, title, "title") for code, title in CODES.items()]
    terms += [Term(CM, code, text, kind) for text, code, kind in TERMS]
    terms.append(Term(CM, "I21.9", "acute myocardial infarction, unspecified", "inclusion"))  # = title
    return CodeCatalog(infos, terms, "test")


def test_heldout_slice_is_deterministic_and_sized_by_percent() -> None:
    codes = [f"A{i:02d}.{j}" for i in range(100) for j in range(10)]
    first = [c for c in codes if is_heldout(c, 5)]
    assert first == [c for c in codes if is_heldout(c, 5)]
    assert 20 < len(first) < 90
    assert not any(is_heldout(c, 0) for c in codes)
    assert all(is_heldout(c, 100) for c in codes)


def test_catalog_pairs_take_every_name_but_the_title_and_skip_heldout_codes() -> None:
    catalog = _catalog()
    pairs = catalog_pairs(catalog, heldout_percent=0)
    assert {(p.mention, p.code, p.source) for p in pairs} == set(TERMS)
    held = {c for c in CODES if is_heldout(c, 50)}
    assert held and held != set(CODES)
    assert {p.code for p in catalog_pairs(catalog, heldout_percent=50)} == set(CODES) - held
    assert {p.code for p in heldout_index_pairs(catalog, 50)} == {
        code for _, code, kind in TERMS if kind in ("index", "neoplasm") and code in held
    }


def _mention(text: str, note: str, concepts: list[str] | None = None) -> Mention:
    start = note.index(text)
    return Mention(start=start, end=start + len(text), text=text, concepts=concepts or [])


def test_evidence_pairs_take_the_mention_inside_the_sentence_that_names_the_code() -> None:
    note = "Seen for a bladder infection. Also heart attack last year. Denies lung infection."
    encounter = Encounter(
        encounter_id="e1",
        documents=[Document(document_id="d1", text=note)],
        gold=Gold(diagnosis=["N39.0", "I21.9"]),
    )
    mentions = [
        _mention("bladder infection", note, ["N39"]),
        _mention("heart attack", note),
        _mention("lung infection", note, ["J18.9"]),
    ]
    second = note.index("Also")
    evidence = {
        "e1": [
            ("diagnosis", "N39.0", "d1", 0, second - 1),
            ("diagnosis", "I21.9", "d1", second, note.index("Denies") - 1),
            ("diagnosis", "E11.9", "d1", 0, len(note)),  # no mention names it or resembles its title
        ]
    }
    pairs = evidence_pairs(
        [encounter], evidence, lambda text, doc: mentions, code_names(_catalog()), Encoder(threads=1)
    )
    assert {(p.mention, p.code) for p in pairs} == {("bladder infection", "N39.0"), ("heart attack", "I21.9")}
    assert all(p.source == "codiesp" for p in pairs)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A few fine-tuning steps on the fixture pairs."""
    folder = tmp_path_factory.mktemp("linked") / "encoder"
    pairs = [LinkPair(text, CM, code, kind) for text, code, kind in TERMS]
    config = LinkConfig(steps=12, batch_size=4, learning_rate=2e-4, warmup=0.1, heldout_percent=0, seed=3)
    info = fine_tune(pairs, code_names(_catalog()), folder, config)
    return folder, info


def _cosines(encoder: Encoder) -> np.ndarray:
    m = encoder.encode([text for text, _, _ in TERMS])
    t = encoder.encode([CODES[code] for _, code, _ in TERMS])
    return np.sum(m * t, axis=1)


def test_fine_tune_pulls_mentions_toward_their_code_names(tuned: tuple[Path, dict[str, float]]) -> None:
    folder, info = tuned
    assert info["steps"] == 12
    before = _cosines(Encoder(threads=1))
    after = _cosines(Encoder(path=folder, name="linked-test", threads=1))
    assert after.mean() > before.mean() + 0.05
    # and the right title is the nearest for more mentions than before
    titles = list(CODES.values())

    def top1(encoder: Encoder) -> int:
        sims = encoder.encode([t for t, _, _ in TERMS]) @ encoder.encode(titles).T
        return sum(titles[int(np.argmax(s))] == CODES[c] for s, (_, c, _) in zip(sims, TERMS, strict=True))

    assert top1(Encoder(path=folder, name="linked-test", threads=1)) >= top1(Encoder(threads=1))


def test_pack_carries_the_linked_encoder_and_gives_the_same_vectors(
    tuned: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    folder, _ = tuned
    encoder = Encoder(path=folder, name="linked-test", threads=1, precision="float32")
    codes = sorted(CODES)
    vectors = encoder.encode([CODES[c] for c in codes])
    save_code_indexes({CM: DenseCodeIndex(codes, [CODES[c] for c in codes], vectors)}, tmp_path, encoder)
    loaded = load_encoder(tmp_path, Runtime(precision="float32", threads=1))
    assert loaded.name == "linked-test" and not loaded.packaged
    assert loaded.path is not None and loaded.path.is_relative_to(tmp_path)
    queries = ["heart attack", "bladder infection"]
    np.testing.assert_allclose(loaded.encode(queries), encoder.encode(queries), atol=1e-6)
    np.testing.assert_allclose(
        load_code_indexes(tmp_path)[CM].vectors, vectors.astype(np.float16).astype(np.float32)
    )
    # and a pack of the generic encoder loads the generic one
    generic = tmp_path / "generic"
    save_code_indexes({CM: DenseCodeIndex(codes, codes, vectors)}, generic, Encoder(threads=1))
    assert load_encoder(generic, Runtime(precision="float32")).packaged


def test_a_second_fit_takes_the_linked_encoder_from_the_cache(tmp_path: Path) -> None:
    built: list[int] = []

    def make_pairs() -> list[LinkPair]:
        built.append(1)
        return [LinkPair(text, CM, code, kind) for text, code, kind in TERMS]

    config = LinkConfig(steps=1, batch_size=4, heldout_percent=0)
    names = code_names(_catalog())
    job = LinkingJob.of(["catalog", "train"], make_pairs, names, config)
    first = linked_encoder(job, tmp_path)
    second = linked_encoder(LinkingJob.of(["catalog", "train"], make_pairs, names, config), tmp_path)
    assert built == [1]
    assert first.name == second.name == f"linked-{job.key}"
    assert first.path == second.path == job.folder(tmp_path)
    other = linked_encoder(LinkingJob.of(["catalog", "other train"], make_pairs, names, config), tmp_path)
    assert built == [1, 1] and other.name != first.name
    # another profile is another key: weights trained with other settings are never taken for these
    gpu = LinkingJob.of(["catalog", "train"], make_pairs, names, LinkConfig.for_profile("gpu"))
    assert gpu.key != job.key and not gpu.cached(tmp_path)


def test_the_gpu_profile_is_refused_on_a_cpu_unless_its_weights_are_cached(tmp_path: Path) -> None:
    import torch

    from medcode.data.errors import InvalidInputError

    if torch.cuda.is_available():
        pytest.skip("a CUDA device would train it")
    built: list[int] = []

    def make_pairs() -> list[LinkPair]:
        built.append(1)
        return [LinkPair(text, CM, code, kind) for text, code, kind in TERMS]

    names = code_names(_catalog())
    job = LinkingJob.of(["catalog", "train"], make_pairs, names, LinkConfig.for_profile("gpu"))
    with pytest.raises(InvalidInputError, match="--encoder-profile cpu"):
        linked_encoder(job, tmp_path, needs_gpu=True)
    assert built == [] and not job.folder(tmp_path).exists()
    # weights trained elsewhere (here: one quick step) under the job's key are taken without a GPU
    fine_tune(make_pairs(), names, job.folder(tmp_path), LinkConfig(steps=1, batch_size=4, heldout_percent=0))
    assert linked_encoder(job, tmp_path, needs_gpu=True).path == job.folder(tmp_path)


def test_profiles_and_their_command_line_overrides() -> None:
    from medcode.training.linking import LINK_PROFILES
    from medcode.training.options import ENCODER_PROFILES

    assert tuple(LINK_PROFILES) == ENCODER_PROFILES  # the command line offers exactly the profiles there are
    cpu, gpu = LinkConfig.for_profile("cpu"), LinkConfig.for_profile("gpu")
    assert cpu == LinkConfig()
    assert gpu.batch_size > cpu.batch_size and gpu.steps > cpu.steps and gpu.frozen_layers == 0
    tuned = LinkConfig.for_profile("gpu", steps=7, minutes=1.5)
    assert (tuned.steps, tuned.time_budget_s, tuned.batch_size) == (7, 90.0, gpu.batch_size)


def test_unknown_encoder_option_is_one_clear_error(tmp_path: Path) -> None:
    from medcode.data.errors import InvalidInputError
    from medcode.training.options import TrainingOptions

    with pytest.raises(InvalidInputError, match="--encoder"):
        TrainingOptions(dataset="jsonl", data_dir=tmp_path, encoder="bert")
    with pytest.raises(InvalidInputError, match="--encoder-steps"):
        TrainingOptions(dataset="jsonl", data_dir=tmp_path, encoder="linked", encoder_steps=0)
    with pytest.raises(InvalidInputError, match="--encoder-minutes"):
        TrainingOptions(dataset="jsonl", data_dir=tmp_path, encoder="linked", encoder_minutes=0)
    with pytest.raises(InvalidInputError, match="--encoder-profile"):
        TrainingOptions(dataset="jsonl", data_dir=tmp_path, encoder="linked", encoder_profile="tpu")


def test_generic_encoder_option_fine_tunes_nothing(tmp_path: Path) -> None:
    from medcode.training.options import TrainingOptions
    from medcode.training.presets import FitEnvironment, dense_encoder

    options = TrainingOptions(dataset="jsonl", data_dir=tmp_path)
    assert dense_encoder(options, [], None, FitEnvironment(cache_dir=tmp_path), None) is None
    assert not (tmp_path / "linking").exists()


def test_linked_encoder_option_takes_its_profile_and_refuses_the_gpu_one_on_a_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from medcode.data.errors import InvalidInputError
    from medcode.training import linking
    from medcode.training.options import TrainingOptions
    from medcode.training.presets import FitEnvironment, dense_encoder

    if torch.cuda.is_available():
        pytest.skip("a CUDA device would train the gpu profile")
    configs: list[LinkConfig] = []

    def small_job(
        knowledge: object, train: object, evidence: object, config: LinkConfig, **_: object
    ) -> LinkingJob:
        configs.append(config)
        pairs = [LinkPair(text, CM, code, kind) for text, code, kind in TERMS]
        return LinkingJob.of(["catalog", "train"], lambda: pairs, code_names(_catalog()), config)

    monkeypatch.setattr(linking, "linking_job", small_job)
    environment = FitEnvironment(cache_dir=tmp_path)

    def options(**kw: object) -> TrainingOptions:
        return TrainingOptions(dataset="jsonl", data_dir=tmp_path, encoder="linked", **kw)  # type: ignore[arg-type]

    with pytest.raises(InvalidInputError, match="gpu profile"):
        dense_encoder(options(encoder_profile="gpu"), [], None, environment, None)
    assert configs[-1] == LinkConfig.for_profile("gpu")
    encoder = dense_encoder(options(encoder_profile="cpu", encoder_steps=1), [], None, environment, None)
    assert configs[-1] == LinkConfig.for_profile("cpu", steps=1)
    assert encoder.path is not None and encoder.path.parent == tmp_path / "linking"
    assert json.loads((encoder.path / "linking.json").read_text())["steps"] == 1
