"""`medcode batch --engine ray` on a local Ray cluster bound to 127.0.0.1 (two actors, one CPU each): the
same result files as the in-process loop and the same results as `medcode suggest`. Slow: Ray starts in
about 20 s and each actor loads the model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from medcode import cli
from medcode.batch import engines

from .test_batch import NOTES, batch, encounter, errors, results

# not importorskip: Ray must first be imported by medcode batch, which sets it up for loopback only
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the batch extra (ray)"),
]


def test_ray_batch_equals_local_loop_and_suggest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.jsonl"
    lines = [encounter(i).model_dump_json() for i in NOTES]
    lines.insert(2, '{"encounter_id": "cut", "documents": [')
    path.write_text("\n".join(lines) + "\n")
    local = tmp_path / "local"
    assert batch(path, "--out", local, "--shard-size", "2") == 0

    addresses: list[str] = []
    connect = engines._connect

    def connect_and_record(options: engines.RayOptions) -> Any:
        ray, started = connect(options)
        addresses.append(ray.get_runtime_context().gcs_address)
        return ray, started

    monkeypatch.setattr(engines, "_connect", connect_and_record)
    capsys.readouterr()
    on_ray = tmp_path / "ray"
    args = ("--engine", "ray", "--actors", "2", "--batch-size", "1", "--shard-size", "2")
    assert batch(path, "--out", on_ray, *args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["done"], summary["failed"], summary["shards_written"]) == (5, 1, 3)
    assert [a.split(":")[0] for a in addresses] == ["127.0.0.1"]

    parts = sorted(p.name for p in local.glob("part-*.jsonl"))
    assert parts == sorted(p.name for p in on_ray.glob("part-*.jsonl")) and len(parts) == 3
    for name in parts:
        assert (on_ray / name).read_bytes() == (local / name).read_bytes()
    assert errors(on_ray) == errors(local) and errors(on_ray)[0]["source"] == "in.jsonl:3"

    for result in results(on_ray):
        single = tmp_path / "one.json"
        single.write_text(encounter(result["encounter_id"]).model_dump_json())
        assert cli.main(["suggest", str(single), "--model", "builtin", "--compact"]) == 0
        assert json.loads(capsys.readouterr().out) == result
