"""`medcode batch` with the in-process engine on the built-in model: same answers as `medcode suggest`, each
input format, the errors file, resume after a finished shard, a half-written file or a crash, and bad input.

The Ray engine's tests are in test_batch_ray.py (slow)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medcode import cli
from medcode.batch import engines
from medcode.data.jsonl import write_jsonl
from medcode.data.types import Document, Encounter, Patient
from medcode.settings import reset_settings

SECRET = "Zanzibar"
"""A word in the notes that must never reach the errors file."""
NOTES = {
    "e1": "Patient with type 2 diabetes mellitus and essential hypertension. No pneumonia.",
    "e2": "Acute kidney failure. Family history of asthma.",
    "e3": "Iron deficiency anemia and atrial fibrillation.",
    "e4": "Community acquired pneumonia. Denies chest pain.",
    "e5": "Urinary tract infection with fever.",
}
PEOPLE = {
    "e1": (67, "female"),
    "e2": (45, "male"),
    "e3": (80, "female"),
    "e4": (30, "male"),
    "e5": (5, "female"),
}


def encounter(encounter_id: str, text: str | None = None) -> Encounter:
    age, sex = PEOPLE.get(encounter_id, (50, "male"))
    return Encounter(
        encounter_id=encounter_id,
        patient=Patient(age=age, sex=sex),  # type: ignore[arg-type]
        setting="outpatient",
        documents=[Document(document_id="d1", text=text if text is not None else NOTES[encounter_id])],
    )


def batch(*args: str | Path) -> int:
    return cli.main(["batch", *[str(a) for a in args], "--model", "builtin"])


def results(out: Path) -> list[dict[str, Any]]:
    """Every result line of every part file, in file order."""
    return [json.loads(line) for path in sorted(out.glob("part-*.jsonl")) for line in path.open()]


def errors(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "errors.jsonl").open()]


def summary(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def holds(found: dict[str, Any], expected: dict[str, Any]) -> bool:
    return {k: found.get(k) for k in expected} == expected


@pytest.fixture
def five(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    write_jsonl([encounter(i) for i in NOTES], path)
    return path


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEDCODE_MAX_NOTE_CHARS", "300")
    reset_settings()
    yield
    monkeypatch.delenv("MEDCODE_MAX_NOTE_CHARS")
    reset_settings()


def test_batch_results_equal_suggest_on_each_encounter(
    five: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert batch(five, "--out", out, "--shard-size", "2") == 0
    assert holds(summary(capsys), {"done": 5, "failed": 0, "skipped": 0, "shards_written": 3})
    got = results(out)
    assert [r["encounter_id"] for r in got] == list(NOTES)
    assert sorted(p.name for p in out.glob("part-*.jsonl")) == [f"part-0000{k}.jsonl" for k in range(3)]
    for result, line in zip(got, five.read_text().splitlines(), strict=True):
        single = tmp_path / "one.json"
        single.write_text(line)
        assert cli.main(["suggest", str(single), "--model", "builtin", "--compact"]) == 0
        assert json.loads(capsys.readouterr().out) == result  # codes, confidences, evidence, routing
    assert any(r["codes"] for r in got)
    assert (out / "errors.jsonl").read_text() == ""


def test_failing_encounters_go_to_errors_file_and_the_run_goes_on(
    tmp_path: Path, small_limits: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        encounter("e1").model_dump_json(),
        '{"encounter_id": "broken", "documents": [{"document_id": "d1", "text": "' + SECRET,  # cut short
        encounter("long", f"{SECRET} has fever. " * 40).model_dump_json(),
        encounter("blank", "   ").model_dump_json(),
        json.dumps({"encounter_id": "nodocs", "patient": {"age": 200}, "documents": [], "x": SECRET}),
        encounter("e1", f"{SECRET} again").model_dump_json(),
        "[1, 2]",
        encounter("e2").model_dump_json(),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert batch(path, "--out", out, "--shard-size", "3") == 0
    assert holds(summary(capsys), {"done": 2, "failed": 6, "skipped": 0})
    assert [r["encounter_id"] for r in results(out)] == ["e1", "e2"]
    failed = errors(out)
    assert [(e["encounter_id"], e["source"]) for e in failed] == [
        (None, "in.jsonl:2"),
        ("long", "in.jsonl:3"),
        ("blank", "in.jsonl:4"),
        ("nodocs", "in.jsonl:5"),
        ("e1", "in.jsonl:6"),
        (None, "in.jsonl:7"),
    ]
    reasons = [e["reason"] for e in failed]
    assert "not valid JSON" in reasons[0]
    assert "limit is 300" in reasons[1]
    assert "no text" in reasons[2]
    assert "patient.age" in reasons[3] and "documents" in reasons[3]
    assert reasons[4] == "encounter_id repeats in.jsonl:1"
    assert "expected a JSON object" in reasons[5]
    assert SECRET not in (out / "errors.jsonl").read_text()


def test_model_failure_on_one_encounter_is_recorded_and_the_run_goes_on(
    five: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = engines.code_one

    def fails_on_e3(coder: Any, enc: Encounter) -> Any:
        if enc.encounter_id == "e3":
            enc = enc.model_copy(update={"documents": None})  # the model meets an object it cannot read
        return real(coder, enc)

    monkeypatch.setattr(engines, "code_one", fails_on_e3)
    out = tmp_path / "out"
    assert batch(five, "--out", out) == 0
    assert [r["encounter_id"] for r in results(out)] == ["e1", "e2", "e4", "e5"]
    [failure] = errors(out)
    assert failure["encounter_id"] == "e3" and failure["source"] == "in.jsonl:3"
    assert failure["reason"].startswith("the model failed on this encounter (")


def test_finished_shard_is_skipped_and_half_written_file_is_ignored(
    five: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert batch(five, "--out", out, "--shard-size", "2") == 0
    first_run = {p.name: p.read_bytes() for p in out.glob("part-*.jsonl")}
    kept = out / "part-00000.jsonl"
    kept_mtime = kept.stat().st_mtime_ns
    (out / "part-00001.jsonl").unlink()  # as if the run stopped while writing shard 1 ...
    (out / ".part-00001.jsonl.tmp").write_text('{"encounter_id": "e3", "cod')  # ... half-way
    capsys.readouterr()

    assert batch(five, "--out", out, "--shard-size", "2") == 0
    assert holds(summary(capsys), {"done": 2, "failed": 0, "skipped": 3, "shards_written": 1})
    assert kept.stat().st_mtime_ns == kept_mtime
    assert {p.name: p.read_bytes() for p in out.glob("part-*.jsonl")} == first_run
    assert not list(out.glob(".*.tmp"))


def test_run_stopped_mid_shard_resumes_with_nothing_lost_or_twice(
    five: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = tmp_path / "whole"
    assert batch(five, "--out", whole, "--shard-size", "2") == 0
    real = engines.code_one
    calls = []

    def interrupted_at_fourth(coder: Any, enc: Encounter) -> Any:
        calls.append(enc.encounter_id)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(coder, enc)

    monkeypatch.setattr(engines, "code_one", interrupted_at_fourth)
    out = tmp_path / "out"
    assert batch(five, "--out", out, "--shard-size", "2") == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert [r["encounter_id"] for r in results(out)] == ["e1", "e2"]  # shard 1 was half done: not written

    monkeypatch.setattr(engines, "code_one", real)
    assert batch(five, "--out", out, "--shard-size", "2") == 0
    assert holds(summary(capsys), {"done": 3, "skipped": 2})
    assert results(out) == results(whole)


def test_rerun_with_another_shard_size_or_changed_input_is_refused(
    five: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert batch(empty, "--out", out, "--shard-size", "2") == 0
    capsys.readouterr()
    assert batch(empty, "--out", out, "--shard-size", "3") == 2
    assert "another --shard-size" in capsys.readouterr().err
    empty.write_text(encounter("e1").model_dump_json() + "\n")
    assert batch(empty, "--out", out, "--shard-size", "2") == 2
    assert "holds a run of another input (or the input changed since)" in capsys.readouterr().err


def test_parquet_input_nested_or_flat_gives_the_same_results(
    five: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert batch(five, "--out", tmp_path / "from-jsonl") == 0
    nested = tmp_path / "nested.parquet"
    rows = [json.loads(line) for line in five.read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), nested)
    flat = tmp_path / "flat.parquet"
    flat_rows = [
        {"encounter_id": k, "text": v, "age": PEOPLE[k][0], "sex": PEOPLE[k][1], "setting": "outpatient"}
        for k, v in NOTES.items()
    ]
    pq.write_table(pa.Table.from_pylist(flat_rows), flat)
    assert batch(nested, "--out", tmp_path / "from-nested", "--parquet") == 0
    assert batch(flat, "--out", tmp_path / "from-flat") == 0
    expected = results(tmp_path / "from-jsonl")
    assert results(tmp_path / "from-nested") == expected
    assert results(tmp_path / "from-flat") == expected
    table = pq.read_table(tmp_path / "from-nested" / "part-00000.parquet").to_pylist()
    assert [row["encounter_id"] for row in table] == list(NOTES)
    assert [[c["code"] for c in row["codes"]] for row in table] == [
        [c["code"] for c in r["codes"]] for r in expected
    ]
    assert [json.loads(row["result"]) for row in table] == expected


def _attachment(text: str) -> dict[str, Any]:
    return {"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}


def test_fhir_bulk_export_is_grouped_by_encounter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    export.mkdir()
    patients = [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-06-01"},
        {"resourceType": "Patient", "id": "p2", "gender": "male"},
    ]
    encounters = [
        {
            "resourceType": "Encounter",
            "id": "enc1",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2025-03-01"},
        },
        {"resourceType": "Encounter", "id": "enc-empty", "status": "finished", "class": {"code": "IMP"}},
    ]
    documents = [
        {
            "resourceType": "DocumentReference",
            "id": "n1",
            "status": "current",
            "subject": {"reference": "Patient/p1"},
            "context": {"encounter": [{"reference": "Encounter/enc1"}]},
            "content": [_attachment(NOTES["e1"])],
        },
        {
            "resourceType": "DocumentReference",
            "id": "n2",
            "status": "current",
            "subject": {"reference": "Patient/p2"},
            "content": [_attachment(NOTES["e2"])],
        },
        {
            "resourceType": "DocumentReference",
            "id": "n3",
            "status": "current",
            "subject": {"reference": "Patient/p1"},
            "context": {"encounter": [{"reference": "https://ehr.example/fhir/Encounter/enc1"}]},
            "content": [_attachment(NOTES["e3"])],
        },
    ]
    for name, resources in (
        ("Patient", patients),
        ("Encounter", encounters),
        ("DocumentReference", documents),
    ):
        lines = [json.dumps(r) for r in resources]
        (export / f"{name}.ndjson").write_text(
            "\n".join(lines) + ("\nnot a resource\n" if name == "Patient" else "\n")
        )
    out = tmp_path / "out"
    assert batch(export, "--out", out) == 0

    same = tmp_path / "same.jsonl"
    write_jsonl(
        [
            Encounter(
                encounter_id="enc1",
                patient=Patient(age=74, sex="female"),
                setting="outpatient",
                date="2025-03-01",
                documents=[
                    Document(document_id="n1", text=NOTES["e1"]),
                    Document(document_id="n3", text=NOTES["e3"]),
                ],
            ),
            Encounter(
                encounter_id="n2",
                patient=Patient(sex="male"),
                setting="other",
                documents=[Document(document_id="n2", text=NOTES["e2"])],
            ),
        ],
        same,
    )
    assert batch(same, "--out", tmp_path / "same") == 0
    assert results(out) == results(tmp_path / "same")
    assert [(e["source"], e["encounter_id"]) for e in errors(out)] == [
        ("Encounter/enc-empty", "enc-empty"),
        ("Patient.ndjson:3", None),
    ]
    assert "DocumentReference" in errors(out)[0]["reason"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file or folder"),
        (b"\x1f\x8b\x08\x00 compressed", "is compressed (gzip)"),
        (b"PAR1 but not really a parquet file", "is not a readable Parquet file"),
        (b"encounter_id,text\ne1,fever\n", "its first line is not a JSON object"),
    ],
)
def test_bad_input_file_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "input.jsonl"
    if content is not None:
        path.write_bytes(content)
    assert batch(path, "--out", tmp_path / "out") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("medcode: error: ") and message in err


def test_folder_of_mixed_formats_is_refused(
    tmp_path: Path, five: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(five.read_bytes())
    (folder / "b.ndjson").write_text(json.dumps({"resourceType": "Patient", "id": "p"}) + "\n")
    assert batch(folder, "--out", tmp_path / "out") == 2
    assert "mixes input formats" in capsys.readouterr().err


def test_results_are_submitted_to_the_review_queue_once(
    five: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import func, select

    from medcode.serving.db import Database
    from medcode.serving.orm import EncounterRow, ReviewItemRow, RevisionRow

    url = f"sqlite:///{tmp_path / 'queue.db'}"
    out = tmp_path / "out"
    assert batch(five, "--out", out, "--shard-size", "2", "--submit-db", url) == 0
    (out / "part-00002.jsonl").unlink()  # the last shard again, as after a crash before its mark
    assert batch(five, "--out", out, "--shard-size", "2", "--submit-db", url) == 0
    database = Database.connect(url)
    try:
        with database.sessions() as session:
            assert session.scalar(select(func.count()).select_from(EncounterRow)) == 5
            assert session.scalar(select(func.count()).select_from(RevisionRow)) == 5
            queued = session.scalar(select(func.count()).select_from(ReviewItemRow))
            statuses = set(session.scalars(select(EncounterRow.status)))
    finally:
        database.dispose()
    assert statuses == {"in_review"}  # the built-in model is uncalibrated: everything goes to a coder
    assert queued == 5


def test_a_ray_actor_runs_its_model_on_the_cpus_it_asked_ray_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each model actor asks Ray for ACTOR_CPUS and its encoder runs that many threads, not every core of
    the node (actors sharing a node would compete: two coded no faster than one)."""
    from medcode.model.registry import Registry
    from medcode.model.runtime import Runtime

    loaded: list[Registry] = []

    def load_coder(registry: Registry, model_ref: str) -> object:
        loaded.append(registry)
        return object()

    monkeypatch.setattr(engines, "load_coder", load_coder)
    registry = Registry(tracking_uri="sqlite://", cache_dir=tmp_path, runtime=Runtime(precision="float32"))
    engines.SuggestActor(registry, "builtin")
    assert loaded[0].runtime == Runtime(precision="float32", threads=engines.ACTOR_CPUS)
    assert registry.runtime.threads is None  # the caller's registry is left as it was
