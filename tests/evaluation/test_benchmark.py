"""`medcode benchmark` and `python -m medcode.evaluation.benchmark`: latency, throughput, memory, notes file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medcode import cli
from medcode.evaluation import benchmark, metrics


def test_latency_summary_percentiles() -> None:
    summary = metrics.latency_summary([0.01] * 98 + [0.5, 1.0], total_seconds=2.0)
    assert summary["latency_p50_ms"] == pytest.approx(10.0)
    assert summary["latency_p99_ms"] > 400
    assert summary["latency_max_ms"] == pytest.approx(1000.0)
    assert summary["notes_per_second"] == pytest.approx(50.0)


def test_benchmark_appends_a_dated_section_with_the_machine(
    corpus: Path, tmp_path: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "NOTES.md"
    args = ["benchmark", "--model", "fake", "--dataset", "jsonl", "--data-dir", str(corpus), "--n", "7",
            "--notes", str(notes), "--format", "json", "--no-progress"]  # fmt: skip
    assert cli.main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 7 and result["source"] == "jsonl dev"
    assert result["latency_p50_ms"] <= result["latency_p95_ms"] <= result["latency_p99_ms"]
    assert result["notes_per_second"] > 0 and result["peak_rss_mb"] > 10
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu"]
    assert len(fake_models["fake"].calls) == 7 + 3  # timed notes + warm-up
    text = notes.read_text()
    assert text.startswith("# Benchmark notes")
    assert "`fake` (fake-1) on cpu" in text and "medcode benchmark --model fake" in text
    assert "notes/s" in text
    assert cli.main(args) == 0
    assert notes.read_text().count("## ") == 2


def test_benchmark_module_runs_on_builtin_sample_notes(
    tmp_path: Path,
    fake_models: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MEDCODE_DATA_DIR", raising=False)
    from medcode.settings import reset_settings

    reset_settings()
    try:
        code = benchmark.main(["--model", "fake", "--n", "5", "--warmup", "0", "--no-write", "--no-progress"])
    finally:
        reset_settings()
    assert code == 0
    assert "5 notes (built-in sample notes) on cpu" in capsys.readouterr().out


def test_benchmark_on_cuda_without_gpu_is_a_clear_error(
    fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert cli.main(["benchmark", "--model", "fake", "--device", "cuda", "--n", "2", "--no-write"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_http_benchmark_times_the_suggest_endpoint() -> None:
    import httpx

    from medcode.data.types import Document, Encounter

    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/suggest"
        assert request.headers["authorization"] == "Bearer k"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"encounter_id": "e", "model_version": "served-3", "codes": []})

    client = httpx.Client(base_url="http://svc", headers={"Authorization": "Bearer k"},
                          transport=httpx.MockTransport(answer))  # fmt: skip
    encounters = [
        Encounter(encounter_id=f"e{i}", documents=[Document(document_id="d1", text="x")]) for i in range(4)
    ]
    out = benchmark.run_http_benchmark(client, encounters, warmup=1, progress=False)
    assert out["n"] == 4 and len(seen) == 5
    assert out["model_version"] == "served-3"
    assert "gold" not in seen[0]
    assert out["latency_p95_ms"] >= out["latency_p50_ms"] >= 0


def test_http_benchmark_error_status_is_a_user_error() -> None:
    import httpx

    from medcode.data.errors import MedcodeError
    from medcode.data.types import Document, Encounter

    client = httpx.Client(base_url="http://svc", transport=httpx.MockTransport(lambda r: httpx.Response(401)))
    with pytest.raises(MedcodeError, match="401"):
        benchmark.run_http_benchmark(
            client, [Encounter(encounter_id="e", documents=[Document(document_id="d1", text="x")])], warmup=0
        )
