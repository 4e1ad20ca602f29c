"""What a pack stores for a quick load (lexical word rows, the lexicon's columns and key prefixes) gives the
same model as building it again, and packs saved before it was stored still load to the same answers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from medcode.model.candidates.lexical import (
    LEXICAL_FILE,
    LexicalIndex,
    lexical_indexes,
    load_lexical,
    save_lexical,
)
from medcode.model.catalog import CM, PCS, CodeCatalog, CodeInfo, Knowledge, Term
from medcode.model.pack import MANIFEST, _sha256, load_pack
from medcode.model.text.lexicon import JSON_FORMAT, Lexicon
from medcode.model.text.pipeline import LEXICON_FILE
from medcode.model.trained.coder import DefaultCoder, DefaultConfig
from medcode.training.default import fit_default

from .synthetic import make_corpus

TERMS = [
    Term(CM, "E11.9", "Type 2 diabetes mellitus without complications", "title"),
    Term(CM, "E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease", "title"),
    Term(CM, "I10", "Essential (primary) hypertension", "title"),
    Term(CM, "I10", "High blood pressure", "inclusion"),
    Term(CM, "R50.9", "Fever, unspecified", "title"),
    Term(PCS, "0DTJ", "Resection of appendix", "title"),
]
QUERIES = ["type 2 diabetes with CKD", "high blood pressure", "fever", "appendix resection", "zzz"]


def _catalog(terms: list[Term] = TERMS) -> CodeCatalog:
    infos = {(t.system, t.code): CodeInfo(t.system, t.code, t.text, True, 1) for t in terms}
    return CodeCatalog(infos.values(), terms, "test 1")


def _hits(index: LexicalIndex) -> list[list[tuple[str, float, float, float, str]]]:
    return [
        [(h.code, h.score, h.query_coverage, h.term_coverage, h.term) for h in hits]
        for hits in index.search(QUERIES, k=5)
    ]


def test_stored_word_rows_rebuild_the_same_lexical_index(tmp_path: Path) -> None:
    catalog = _catalog()
    built = lexical_indexes(catalog)
    save_lexical(built, catalog.fingerprint, tmp_path)
    loaded = lexical_indexes(catalog, tmp_path)
    assert set(loaded) == {CM, PCS}
    for system in built:
        assert loaded[system].vocab == built[system].vocab
        assert np.array_equal(loaded[system].idf, built[system].idf)
        assert _hits(loaded[system]) == _hits(built[system])
        assert loaded[system].score_codes("diabetes kidney", ["E11.22", "E11.9"]) == built[
            system
        ].score_codes("diabetes kidney", ["E11.22", "E11.9"])


def test_word_rows_of_other_names_are_not_used(tmp_path: Path) -> None:
    catalog = _catalog()
    save_lexical(lexical_indexes(catalog), catalog.fingerprint, tmp_path)
    other = _catalog([*TERMS, Term(CM, "J45.909", "Asthma", "title")])
    assert other.fingerprint != catalog.fingerprint
    terms = {s: other.terms(s) for s in other.systems()}
    assert load_lexical(tmp_path, terms, other.fingerprint) is None
    rebuilt = lexical_indexes(other, tmp_path)  # falls back to building: the new name is found
    assert rebuilt[CM].search(["asthma"], k=1)[0][0].code == "J45.909"


def test_a_folder_without_stored_word_rows_builds_them() -> None:
    catalog = _catalog()
    assert load_lexical(Path("/nonexistent"), {CM: catalog.terms(CM)}, catalog.fingerprint) is None


def test_lexicon_columns_round_trip_with_their_prefixes() -> None:
    lexicon = Lexicon(
        {
            "type 2 diabetes": ("condition", ("E11.9",), "core"),
            "chest pain": ("sign_symptom", ("R07.9", "R07.89"), "core"),
            "appendectomy": ("procedure", (), "explicit"),
        },
        meta={"source": "test"},
    )
    data = json.loads(json.dumps(lexicon.to_json()))
    assert data["format"] == JSON_FORMAT
    again = Lexicon.from_json(data)
    assert again.entries == lexicon.entries
    assert again.prefixes == lexicon.prefixes == {"type", "type 2", "chest"}
    assert again.meta == lexicon.meta


def test_lexicon_rows_of_format_1_still_load() -> None:
    rows = [["chest pain", "sign_symptom", ["R07.9"], "core"], ["hiv", "condition", ["B20"], "core"]]
    lexicon = Lexicon.from_json({"format": 1, "meta": {}, "entries": rows})
    assert lexicon.get("chest pain") is not None and lexicon.is_prefix("chest")
    assert lexicon.entries["hiv"] == ("condition", ("B20",), "core")


def test_lexicon_of_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 9"):
        Lexicon.from_json({"format": 9, "entries": []})


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[DefaultCoder, Path]:
    config = DefaultConfig(use_dense=False, folds=3, ranker_folds=2, ranker_max_iter=40)
    coder, _ = fit_default(make_corpus(40, seed=5), Knowledge(), config)
    folder = coder.save(tmp_path_factory.mktemp("fast") / "pack")
    return coder, folder


def _as_old_pack(folder: Path) -> None:
    """Make a pack look saved before the quick-load structures: no word rows, lexicon rows of format 1."""
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / LEXICAL_FILE).unlink()
    manifest["files"].pop(LEXICAL_FILE)
    with gzip.open(folder / LEXICON_FILE, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    lexicon = Lexicon.from_json(data)
    rows = [[k, t, list(c), s] for k, (t, c, s) in lexicon.entries.items()]
    old = {"format": 1, "meta": lexicon.meta, "entries": rows}
    with gzip.open(folder / LEXICON_FILE, "wt", encoding="utf-8") as fh:
        json.dump(old, fh)
    manifest["files"][LEXICON_FILE] = _sha256(folder / LEXICON_FILE)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_a_pack_stores_its_lexical_word_rows_and_lexicon_columns(pack: tuple[DefaultCoder, Path]) -> None:
    coder, folder = pack
    manifest = json.loads((folder / MANIFEST).read_text())
    assert LEXICAL_FILE in manifest["files"]
    with gzip.open(folder / LEXICON_FILE, "rt", encoding="utf-8") as fh:
        assert json.load(fh)["format"] == JSON_FORMAT
    loaded = load_pack(folder)
    assert isinstance(loaded, DefaultCoder)
    for system, index in coder.resources.lexical.items():
        assert loaded.resources.lexical[system].vocab == index.vocab


def test_a_pack_saved_before_the_quick_structures_gives_the_same_answers(
    pack: tuple[DefaultCoder, Path], tmp_path: Path
) -> None:
    import shutil

    coder, folder = pack
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    _as_old_pack(old)
    new_model, old_model = load_pack(folder), load_pack(old)
    for enc in make_corpus(6, seed=12):
        expected = coder.suggest(enc)
        assert new_model.suggest(enc) == expected
        assert old_model.suggest(enc) == expected


def test_the_builtin_models_cache_keeps_word_rows_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medcode.model.candidates import lexical

    catalog = _catalog()
    first = lexical_indexes(catalog, cache_dir=tmp_path)
    cached = tmp_path / "lexical" / catalog.fingerprint / LEXICAL_FILE
    assert cached.is_file()
    assert not list(cached.parent.glob("*.partial"))

    def no_building(terms: object) -> None:
        raise AssertionError("the word rows were built again")

    monkeypatch.setattr(lexical, "_word_rows", no_building)
    again = lexical_indexes(catalog, cache_dir=tmp_path)
    assert again[CM].vocab == first[CM].vocab
    assert _hits(again[CM]) == _hits(first[CM])
