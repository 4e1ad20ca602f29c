"""A default pack is the whole pipeline: trained with a datasets folder, copied to an empty home on a
machine without it, it gives the same codes and confidences, and its first answer embeds no code names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medcode.data.errors import ModelNotFoundError
from medcode.data.types import Document, Encounter, Gold
from medcode.model.catalog import knowledge_from
from medcode.model.pack import load_pack
from medcode.model.text.pipeline import RULE_RESOURCES
from medcode.model.trained.coder import DefaultCoder, DefaultConfig
from medcode.training.default import fit_default

from .synthetic import make_corpus

INVENTED_TERM = "glimmerfold syndrome"
"""A name only the test's datasets folder gives (a Disease Ontology synonym of asthma, J45.909)."""

LOAD_ELSEWHERE = """
import json, sys
from pathlib import Path
from medcode.data.types import Encounter
from medcode.model.candidates import dense

calls = []
original = dense.Encoder.encode
def counting(self, texts, progress=False):
    calls.append(len(texts))
    return original(self, texts, progress)
dense.Encoder.encode = counting
def no_embedding(*args, **kwargs):
    raise AssertionError("code names embedded while loading a pack")
dense.build_code_index = no_embedding

from medcode.model.pack import load_pack
coder = load_pack(Path(sys.argv[1]))
encoded_on_load = len(calls)
notes = [Encounter.model_validate_json(line) for line in Path(sys.argv[2]).read_text().splitlines()]
results = [coder.suggest(e).model_dump(mode="json") for e in notes]
mentions = [m.text for e in notes for m in coder.pipeline.extract(e.documents[0].text)]
print(json.dumps({"encoded_on_load": encoded_on_load, "texts_encoded": sum(calls), "results": results,
                  "mentions": mentions}))
"""


def _datasets_folder(root: Path) -> Path:
    folder = root / "datasets" / "disease-ontology"
    folder.mkdir(parents=True)
    (folder / "do_subsets_union_terms.tsv").write_text(
        "doid\tname\tsynonym\tsynonym_scope\ticd10cm_xrefs\n"
        f"DOID:2841\tasthma\t{INVENTED_TERM}\tEXACT\tJ45.909\n",
        encoding="utf-8",
    )
    return root / "datasets"


def _invented_notes(n: int, start: int) -> list[Encounter]:
    return [
        Encounter(
            encounter_id=f"g{start + i}",
            documents=[Document(document_id="d1", text=f"Seen for {INVENTED_TERM}. No fever.")],
            gold=Gold(diagnosis=["J45.909"]),
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[DefaultCoder, Path]:
    root = tmp_path_factory.mktemp("training-home")
    data_dir = _datasets_folder(root)
    config = DefaultConfig(
        use_dense=True, dense_scope="training", folds=3, ranker_folds=2, ranker_max_iter=40
    )
    train = [*make_corpus(40, seed=5), *_invented_notes(6, 0)]
    coder, _ = fit_default(train, knowledge_from(data_dir), config, lexicon_dir=data_dir)
    coder.save(root / "pack")
    return coder, root / "pack"


def test_pack_copied_to_an_empty_home_without_data_gives_the_same_codes(
    trained: tuple[DefaultCoder, Path], tmp_path: Path
) -> None:
    coder, pack = trained
    assert INVENTED_TERM in coder.pipeline.lexicon  # the datasets folder fed the lexicon
    copied = tmp_path / "elsewhere" / "pack"
    shutil.copytree(pack, copied)
    notes = [*make_corpus(12, seed=21), *_invented_notes(2, 100)]
    (tmp_path / "notes.jsonl").write_text("\n".join(e.model_dump_json() for e in notes), encoding="utf-8")
    home = tmp_path / "empty-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCODE_")}
    env.update(MEDCODE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    run = subprocess.run(
        [sys.executable, "-c", LOAD_ELSEWHERE, str(copied), str(tmp_path / "notes.jsonl")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    elsewhere = json.loads(run.stdout.strip().splitlines()[-1])
    assert elsewhere["encoded_on_load"] == 0
    assert 0 < elsewhere["texts_encoded"] < 200  # the notes' mentions and sentences, never the code names
    assert INVENTED_TERM in elsewhere["mentions"]
    assert not (home / "cache" / "dense").exists() and not (home / "cache" / "text").exists()
    for note, result in zip(notes, elsewhere["results"], strict=True):
        here = coder.suggest(note)
        for kind in ("codes", "candidates"):
            theirs = [(c["code"], c["confidence"]) for c in result[kind]]
            ours = [(c.code, c.confidence) for c in getattr(here, kind)]
            assert [code for code, _ in theirs] == [code for code, _ in ours], note.encounter_id
            for (_, a), (_, b) in zip(theirs, ours, strict=True):
                assert abs(a - b) <= 1e-6
        assert result["routing"] == here.routing.model_dump(mode="json")
    assert "J45.909" in {c["code"] for c in elsewhere["results"][-1]["codes"]}


def test_pack_records_its_lexicon_vectors_and_rules(trained: tuple[DefaultCoder, Path]) -> None:
    _, pack = trained
    manifest = json.loads((pack / "manifest.json").read_text())
    assert {"text/lexicon.json.gz", "dense/index.json.gz", "dense/vectors-0.npy"} <= set(manifest["files"])
    rule_files = {f"text/rules/{name}" for name in RULE_RESOURCES}  # the text pipeline's rules travel too
    assert {*rule_files, "text/rules/context_tokens.json"} <= set(manifest["files"])
    assert manifest["config"]["rules"] == {"enabled": True, "ncci_source": None, "ncci_edits": 0}
    assert manifest["config"]["text"]["lexicon_keys"] > 30_000


@pytest.mark.parametrize(
    "name", ["text/lexicon.json.gz", "dense/vectors-0.npy", "text/rules/context_rules.json"]
)
def test_a_tampered_lexicon_or_vector_file_is_refused(
    trained: tuple[DefaultCoder, Path], tmp_path: Path, name: str
) -> None:
    _, pack = trained
    copied = tmp_path / "pack"
    shutil.copytree(pack, copied)
    data = bytearray((copied / name).read_bytes())
    data[-1] ^= 0xFF
    (copied / name).write_bytes(bytes(data))
    with pytest.raises(ModelNotFoundError, match=f"corrupt: {name} does not match its checksum"):
        load_pack(copied)


def test_a_pack_without_a_lexicon_is_refused_with_a_clear_error(
    trained: tuple[DefaultCoder, Path], tmp_path: Path
) -> None:
    _, pack = trained
    copied = tmp_path / "pack"
    shutil.copytree(pack, copied)
    (copied / "text" / "lexicon.json.gz").unlink()
    manifest = json.loads((copied / "manifest.json").read_text())
    del manifest["files"]["text/lexicon.json.gz"]  # as a pack saved before lexicons were packed
    (copied / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelNotFoundError, match="carries no text lexicon"):
        load_pack(copied)
