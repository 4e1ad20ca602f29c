from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data import codiesp
from medcode.data.corpora import load_corpus, load_corpus_with_report
from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from tests.data.conftest import write_codiesp


@pytest.fixture
def codiesp_dir(tmp_path: Path) -> Path:
    return write_codiesp(tmp_path)


def test_one_encounter_per_document_with_english_text(codiesp_dir: Path) -> None:
    encounters = load_corpus("codiesp", codiesp_dir, "train")
    assert [e.encounter_id for e in encounters] == ["doc-1", "doc-2"]
    first = encounters[0]
    assert first.setting == "inpatient"
    assert first.documents[0].document_id == "doc-1"
    assert first.documents[0].text.startswith("A 60-year-old man")
    assert first.patient.age is None


def test_codes_are_normalised_and_deduplicated(codiesp_dir: Path) -> None:
    first = load_corpus("codiesp", codiesp_dir, "train")[0]
    assert first.gold is not None
    assert first.gold.diagnosis == ["E11.22", "X99.9ZZ"]
    assert first.gold.procedure == ["BW03ZZZ", "0DTJ", "ZZ99ZZZ"]


def test_unknown_codes_are_kept_and_reported(codiesp_dir: Path) -> None:
    corpus = load_corpus_with_report("codiesp", codiesp_dir, "train")
    report = corpus.report
    assert report is not None
    assert dict(report.missing_diagnosis) == {"X99.9ZZ": 1}
    assert report.procedure_checked
    assert dict(report.missing_procedure) == {"ZZ99ZZZ": 1}  # 0DTJ prefixes valid codes
    assert report.duplicate_labels == 1
    assert dict(report.labels_without_text) == {"ghost": 1}
    summary = report.summary()
    assert summary["documents"] == 2
    assert summary["diagnosis_labels"] == 3
    assert summary["missing_diagnosis_codes"] == 1


def test_unknown_codes_are_logged_by_count_without_the_codes(
    codiesp_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="medcode.data.codiesp"):
        load_corpus_with_report("codiesp", codiesp_dir, "train")
    lines = [r.getMessage() for r in caplog.records]
    assert "CodiEsp train: 1 diagnosis codes (1 labels) not in ICD-10-CM; kept in gold" in lines
    assert "CodiEsp train: 1 procedure codes (1 labels) not in ICD-10-PCS; kept in gold" in lines
    assert not any("X99.9ZZ" in line or "ZZ99ZZZ" in line for line in lines)


def test_datasets_root_is_accepted_for_the_codiesp_folder(codiesp_dir: Path) -> None:
    assert len(load_corpus("codiesp", codiesp_dir.parent, "train")) == 2


def test_missing_split_names_the_splits_present(codiesp_dir: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"'test' not found.*present.*train"):
        load_corpus("codiesp", codiesp_dir, "test")


def test_unknown_dataset_and_missing_folder_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="unknown dataset 'mimic'"):
        load_corpus("mimic", tmp_path, "train")
    with pytest.raises(DatasetNotFoundError, match="data folder not found"):
        load_corpus("codiesp", tmp_path / "absent", "train")


def test_x_file_gives_typed_records_with_spanish_offsets(codiesp_dir: Path) -> None:
    records = codiesp.read_x(codiesp_dir, "train")
    assert records[0] == codiesp.XRecord(
        "doc-1", "diagnosis", "E11.22", "e11.22", "diabetes tipo 2", ((21, 36),)
    )
    assert records[1].task == "procedure" and records[1].code == "BW03ZZZ"
    assert records[1].spans == ((2, 5), (8, 10))
    spanish = codiesp.read_spanish_text(codiesp_dir, "train", "doc-1")
    start, end = records[0].spans[0]
    assert spanish[start:end] == "diabetes tipo 2"


def test_bad_x_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "trainX.tsv"
    path.write_text(
        "doc-1\tDIAGNOSTICO\te11.22\tdiabetes\t20 35\ndoc-1\tOTRO\te11.9\tx\t1 2\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInputError, match=r"trainX\.tsv:2: label 'OTRO'"):
        codiesp.read_x_file(path)


def test_background_documents_read_from_the_archive(tmp_path: Path) -> None:
    import io
    import tarfile

    root = tmp_path / "codiesp"
    root.mkdir()
    with tarfile.open(root / "background_text_files_en.tar.gz", "w:gz") as tar:
        data = b"Background case text."
        info = tarfile.TarInfo("background/text_files_en/bg-1.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    docs = list(codiesp.iter_background(root))
    assert [d.encounter_id for d in docs] == ["bg-1"]
    assert docs[0].gold is None


@pytest.mark.shared
def test_shared_codiesp_train_and_dev_counts(shared_data: Path) -> None:
    train = load_corpus_with_report("codiesp", shared_data / "codiesp", "train")
    dev = load_corpus_with_report("codiesp", shared_data / "codiesp", "dev")
    assert len(train.encounters) == 500
    assert len(dev.encounters) == 250
    assert train.report is not None and train.report.diagnosis_labels == 5639
    assert train.report.procedure_labels == 1550
    assert all(e.gold and e.gold.diagnosis for e in train.encounters)
