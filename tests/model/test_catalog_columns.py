"""A pack stores its code catalog as columns (`catalog.npz`): loading reads them instead of building the
catalog from the knowledge, with the same codes, names, fingerprint and answers; packs saved before still
load; columns that do not belong to the pack's knowledge or to the installed tabular are not used."""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from medcode.data.errors import ModelNotFoundError
from medcode.model import pack as pack_module
from medcode.model.catalog import CM, PCS, CodeCatalog, CodeInfo, Knowledge, Term, build_catalog
from medcode.model.pack import (
    CATALOG_FILE,
    KNOWLEDGE_FILE,
    MANIFEST,
    _sha256,
    load_catalog_columns,
    load_knowledge,
    load_pack,
    save_knowledge,
)
from medcode.model.trained import coder as coder_module
from medcode.model.trained.coder import DefaultCoder, DefaultConfig
from medcode.training.default import fit_default

from .synthetic import make_corpus

KNOWLEDGE = Knowledge(
    versions=["test knowledge 1"],
    cm_terms=[
        ("sugar diabetes", "E11.9", "synonym"),
        ("Sugar Diabetes", "E11.9", "index"),  # same name in other case: dropped
        ("high blood pressure", "I10", "index"),
        ("nowhere", "Z99.999", "index"),  # not a code: dropped
    ],
    pcs_rows=[("0DTJ4ZZ", "Resection of Appendix, Percutaneous Endoscopic Approach"), ("0DTJ", "Resection")],
)


def _small_catalog() -> CodeCatalog:
    infos = [
        CodeInfo(CM, "E11", "Type 2 diabetes mellitus", False, 1, "4", None),
        CodeInfo(PCS, "0DTJ", "Resection of appendix", False, 4, "0", None),
        CodeInfo(CM, "E11.9", "Type 2 diabetes mellitus without complications", True, 2, "4", "E11"),
        CodeInfo(PCS, "0DTJ4ZZ", "Resection of appendix, endoscopic", True, 7, "0", "0DTJ"),
        CodeInfo(CM, "R50.9", "Fever, unspecified", True, 2, "18", ""),
    ]
    terms = [
        Term(CM, "E11.9", "Type 2 diabetes mellitus without complications", "title"),
        Term(PCS, "0DTJ4ZZ", "Resection of appendix, endoscopic", "title"),
        Term(CM, "E11.9", "TYPE 2 DIABETES MELLITUS WITHOUT COMPLICATIONS", "index"),
        Term(CM, "E11", "Type 2 diabetes mellitus", "title"),
        Term(CM, "E11.9", "diabète sucré de type 2", "synonym"),
        Term(CM, "R50.9", "   ", "title"),
        Term(CM, "R50.9", "Fever", "inclusion"),
        Term(PCS, "0DTJ", "Resection of appendix", "title"),
    ]
    return CodeCatalog(infos, terms, "test 1")


def _round_trip(catalog: CodeCatalog) -> CodeCatalog:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **catalog.to_columns())  # type: ignore[arg-type]
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        return CodeCatalog.from_columns({k: data[k] for k in data.files})


def _same_catalog(got: CodeCatalog, expected: CodeCatalog) -> None:
    assert (got.version, got.fingerprint, len(got)) == (expected.version, expected.fingerprint, len(expected))
    assert got.systems() == expected.systems()
    for system in expected.systems():
        codes = expected.codes(system)
        assert got.codes(system) == codes
        assert got.terms(system) == expected.terms(system)
        assert [got.info(system, c) for c in codes] == [expected.info(system, c) for c in codes]
        assert [got.children(system, c) for c in codes] == [expected.children(system, c) for c in codes]
        assert [list(got.ancestors(system, c)) for c in codes] == [
            list(expected.ancestors(system, c)) for c in codes
        ]


def test_catalog_columns_give_the_same_catalog() -> None:
    catalog = _small_catalog()
    again = _round_trip(catalog)
    _same_catalog(again, catalog)
    assert again.info(CM, "R50.9") == CodeInfo(CM, "R50.9", "Fever, unspecified", True, 2, "18", "")
    assert again.info(CM, "E11") == CodeInfo(CM, "E11", "Type 2 diabetes mellitus", False, 1, "4", None)
    assert [t.text for t in again.terms(CM) if t.code == "E11.9"] == [
        "Type 2 diabetes mellitus without complications",
        "diabète sucré de type 2",
    ]
    assert again.children(CM, "E11") == ["E11.9"] and list(again.ancestors(PCS, "0DTJ4ZZ")) == ["0DTJ"]
    assert (CM, "E11.9") in again and (PCS, "E11.9") not in again and "E11.9" not in again
    assert again.title(CM, "X00") == "" and again.info(CM, "X00") is None and again.terms("HCPCS") == []


def test_catalog_columns_keep_empty_strings_and_single_rows() -> None:
    catalog = CodeCatalog([CodeInfo(CM, "I10", "Hypertension", True, 0, "", None)], [], "")
    again = _round_trip(catalog)
    _same_catalog(again, catalog)
    assert again.info(CM, "I10") == CodeInfo(CM, "I10", "Hypertension", True, 0, "", None)
    empty = _round_trip(CodeCatalog([], [], "none"))
    assert (len(empty), empty.systems(), empty.fingerprint) == (
        0,
        [],
        CodeCatalog([], [], "none").fingerprint,
    )


def test_catalog_columns_of_another_format_are_refused() -> None:
    columns = _small_catalog().to_columns()
    columns["format"] = np.asarray(99)
    with pytest.raises(ValueError, match="format 99"):
        CodeCatalog.from_columns(columns)


def test_catalog_columns_that_do_not_fit_together_are_refused() -> None:
    columns = _small_catalog().to_columns()
    columns["depth"] = columns["depth"][:-1]
    with pytest.raises(ValueError, match="different lengths"):
        CodeCatalog.from_columns(columns)


def test_a_name_holding_the_separator_is_not_stored_as_columns() -> None:
    catalog = CodeCatalog(
        [CodeInfo(CM, "I10", "Hypertension", True, 1)], [Term(CM, "I10", "a\x1fb", "x")], "t"
    )
    with pytest.raises(ValueError, match="separator"):
        catalog.to_columns()


# ---------------------------------------------------------------------------------------------- in a pack


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[DefaultCoder, Path]:
    config = DefaultConfig(use_dense=False, folds=3, ranker_folds=2, ranker_max_iter=40)
    coder, _ = fit_default(make_corpus(40, seed=5), KNOWLEDGE, config)
    return coder, coder.save(tmp_path_factory.mktemp("catalog") / "pack")


def _copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def _rewrite_manifest(folder: Path, drop: str | None = None) -> None:
    """Checksum the pack's files again (what someone editing a pack by hand would do)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    if drop is not None:
        (folder / drop).unlink()
        manifest["files"].pop(drop)
    for rel in manifest["files"]:
        manifest["files"][rel] = _sha256(folder / rel)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _answers(model: object, n: int = 6) -> list[object]:
    assert isinstance(model, DefaultCoder)
    return [model.suggest(enc) for enc in make_corpus(n, seed=12)]


def test_a_pack_reads_its_catalog_from_the_stored_columns(
    trained: tuple[DefaultCoder, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    coder, folder = trained
    assert CATALOG_FILE in json.loads((folder / MANIFEST).read_text())["files"]
    expected = build_catalog(load_knowledge(folder))

    def no_building(*args: object, **kwargs: object) -> None:
        raise AssertionError("the catalog was built from the knowledge")

    monkeypatch.setattr(coder_module, "build_catalog", no_building)
    monkeypatch.setattr(pack_module, "load_knowledge", no_building)
    monkeypatch.setattr(coder_module, "load_knowledge", no_building)
    loaded = load_pack(folder)
    assert isinstance(loaded, DefaultCoder)
    _same_catalog(loaded.resources.catalog, expected)
    assert loaded.resources.catalog.terms(CM)[-3:] == expected.terms(CM)[-3:]
    assert [t.text for t in loaded.resources.catalog.terms(PCS)] == [
        "Resection of Appendix, Percutaneous Endoscopic Approach",
        "Resection",
    ]
    assert _answers(loaded) == _answers(coder)


def test_a_loaded_pack_saved_again_writes_the_same_knowledge_and_catalog(
    trained: tuple[DefaultCoder, Path], tmp_path: Path
) -> None:
    _, folder = trained
    again = load_pack(folder)
    assert isinstance(again, DefaultCoder)
    copy = again.save(tmp_path / "again")  # the knowledge is read from the pack only now
    assert (copy / KNOWLEDGE_FILE).read_bytes() == (folder / KNOWLEDGE_FILE).read_bytes()
    with np.load(copy / CATALOG_FILE) as a, np.load(folder / CATALOG_FILE) as b:
        assert sorted(a.files) == sorted(b.files)
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_a_loaded_pack_whose_folder_changed_is_not_saved_with_other_knowledge(
    trained: tuple[DefaultCoder, Path], tmp_path: Path
) -> None:
    _, folder = trained
    copy = _copy(folder, tmp_path / "copy")
    loaded = load_pack(copy)
    assert isinstance(loaded, DefaultCoder)
    knowledge = load_knowledge(copy)
    knowledge.cm_terms.append(("glimmerfold syndrome", "R50.9", "synonym"))
    save_knowledge(knowledge, copy)  # the folder changes under the loaded model
    with pytest.raises(ModelNotFoundError, match="changed since it was loaded"):
        loaded.save(tmp_path / "again")


def test_a_pack_saved_before_the_catalog_columns_builds_it_as_before(
    trained: tuple[DefaultCoder, Path], tmp_path: Path
) -> None:
    coder, folder = trained
    old = _copy(folder, tmp_path / "old")
    _rewrite_manifest(old, drop=CATALOG_FILE)
    assert load_catalog_columns(old) is None
    loaded = load_pack(old)
    assert isinstance(loaded, DefaultCoder)
    _same_catalog(loaded.resources.catalog, coder.resources.catalog)
    assert _answers(loaded) == _answers(coder)


def test_a_changed_catalog_file_is_refused(trained: tuple[DefaultCoder, Path], tmp_path: Path) -> None:
    _, folder = trained
    bad = _copy(folder, tmp_path / "bad")
    data = bytearray((bad / CATALOG_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / CATALOG_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelNotFoundError, match=f"{CATALOG_FILE} does not match its checksum"):
        load_pack(bad)


def test_catalog_columns_of_other_knowledge_are_not_used(
    trained: tuple[DefaultCoder, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Knowledge edited after the columns were written (and the pack checksummed again): the catalog comes
    from the knowledge, never from columns that no longer match it."""
    _, folder = trained
    edited = _copy(folder, tmp_path / "edited")
    knowledge = load_knowledge(edited)
    knowledge.cm_terms.append(("glimmerfold syndrome", "R50.9", "synonym"))
    save_knowledge(knowledge, edited)
    _rewrite_manifest(edited)
    with caplog.at_level(logging.WARNING, logger="medcode.model.pack"):
        loaded = load_pack(edited)
    assert f"stored code catalog not used (built from another {KNOWLEDGE_FILE})" in caplog.text
    assert isinstance(loaded, DefaultCoder)
    _same_catalog(loaded.resources.catalog, build_catalog(knowledge))
    assert Term(CM, "R50.9", "glimmerfold syndrome", "synonym") in loaded.resources.catalog.terms(CM)


def test_catalog_columns_of_another_tabular_are_not_used(
    trained: tuple[DefaultCoder, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    coder, folder = trained
    monkeypatch.setattr(pack_module, "_tabular_key", lambda: "ICD-10-CM 2099|2|1")
    with caplog.at_level(logging.WARNING, logger="medcode.model.pack"):
        assert load_catalog_columns(folder) is None
    assert "another ICD-10-CM tabular than the installed one" in caplog.text
    loaded = load_pack(folder)
    assert isinstance(loaded, DefaultCoder)
    _same_catalog(loaded.resources.catalog, coder.resources.catalog)


def test_unreadable_catalog_columns_are_not_used(
    trained: tuple[DefaultCoder, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    coder, folder = trained
    broken = _copy(folder, tmp_path / "broken")
    (broken / CATALOG_FILE).write_bytes(b"not a numpy archive")
    _rewrite_manifest(broken)
    with caplog.at_level(logging.WARNING, logger="medcode.model.pack"):
        loaded = load_pack(broken)
    assert "stored code catalog not used (unreadable" in caplog.text
    assert isinstance(loaded, DefaultCoder)
    assert loaded.resources.catalog.fingerprint == coder.resources.catalog.fingerprint
