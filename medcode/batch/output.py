"""The output folder of `medcode batch`: one results file per input shard, written so that nothing is lost
and nothing is written twice.

```
DIR/_batch.json              what the run is (input fingerprint, shard size, model): a rerun must match it
DIR/part-00000.jsonl         results of shard 0, one Result JSON per line in input order
DIR/part-00000.parquet       the same results as a table (with --parquet)
DIR/_errors/part-00000.jsonl encounters of shard 0 that failed: {"encounter_id", "source", "reason"}
DIR/errors.jsonl             every shard's failures, in input order (rebuilt at the end of each run)
```

A shard is committed by writing each file to a hidden temporary name, flushing it to disk and renaming it;
its results file is renamed last and is the mark that the shard is finished. A rerun skips finished shards
and rewrites the others from scratch, so a crash or Ctrl-C half-way through a shard leaves only a
temporary file that the rerun ignores and replaces.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcode.data.errors import InvalidInputError

MANIFEST = "_batch.json"
ERRORS = "errors.jsonl"
SHARD_ERRORS = "_errors"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Failure:
    """An encounter that was not coded, as the errors file records it (no note text)."""

    position: int
    encounter_id: str | None
    source: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"encounter_id": self.encounter_id, "source": self.source, "reason": self.reason}


@dataclass(frozen=True)
class Coded:
    """A coded encounter: its place in the input and its result as the API's JSON."""

    position: int
    result: dict[str, Any]


def shard_name(shard: int) -> str:
    return f"part-{shard:05d}"


class BatchOutput:
    """The output folder of one batch run (see the module docstring)."""

    def __init__(self, folder: Path, manifest: dict[str, Any], *, parquet: bool = False) -> None:
        self.folder = folder
        self.manifest = manifest
        self.parquet = parquet

    @classmethod
    def open(cls, folder: Path, manifest: dict[str, Any], *, parquet: bool = False) -> BatchOutput:
        """Create the folder, or reopen one that holds an earlier run of the same input, shard size and
        model (InvalidInputError, naming the difference, when it holds another run)."""
        if folder.exists() and not folder.is_dir():
            raise InvalidInputError(f"--out {folder} is a file, not a folder")
        path = folder / MANIFEST
        manifest = {"version": MANIFEST_VERSION, **manifest}
        if path.is_file():
            try:
                earlier = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InvalidInputError(f"{path} is damaged: use another --out folder") from None
            _check_same_run(folder, earlier, manifest)
            manifest["model_version"] = earlier.get("model_version")
        elif folder.is_dir() and any(p.name.startswith("part-") for p in folder.iterdir()):
            raise InvalidInputError(
                f"{folder} holds results of another run (no {MANIFEST}): use another --out"
            )
        (folder / SHARD_ERRORS).mkdir(parents=True, exist_ok=True)
        output = cls(folder, manifest, parquet=parquet)
        output._write_manifest()
        return output

    def finished(self, shard: int) -> bool:
        return (self.folder / f"{shard_name(shard)}.jsonl").is_file()

    def commit(
        self,
        shard: int,
        coded: Sequence[Coded],
        failed: Sequence[Failure],
        before_commit: Callable[[Sequence[Coded]], None] | None = None,
    ) -> None:
        """Write one shard's results and failures (each in input order) and mark it finished.

        `before_commit` runs after the failures and tables are written and before the shard is marked
        finished (e.g. submitting the results to the review queue, which is safe to repeat)."""
        coded = sorted(coded, key=lambda c: c.position)
        failed = sorted(failed, key=lambda f: f.position)
        self._check_model(coded)
        name = shard_name(shard)
        _write_atomic(self.folder / SHARD_ERRORS / f"{name}.jsonl", [_line(f.to_json()) for f in failed])
        if self.parquet:
            _write_parquet(self.folder / f"{name}.parquet", [c.result for c in coded])
        if before_commit is not None:
            before_commit(coded)
        _write_atomic(self.folder / f"{name}.jsonl", [_line(c.result) for c in coded])

    def collect_errors(self) -> int:
        """Rebuild DIR/errors.jsonl from the failures of every finished shard; returns how many."""
        lines: list[str] = []
        for path in sorted((self.folder / SHARD_ERRORS).glob("part-*.jsonl")):
            if self.finished(int(path.stem.removeprefix("part-"))):
                lines.extend(path.read_text(encoding="utf-8").splitlines(keepends=True))
        _write_atomic(self.folder / ERRORS, lines)
        return len(lines)

    def _check_model(self, coded: Sequence[Coded]) -> None:
        versions = {c.result.get("model_version") for c in coded}
        if not versions:
            return
        known = self.manifest.get("model_version")
        if known is None:
            self.manifest["model_version"] = known = sorted(str(v) for v in versions)[0]
            self._write_manifest()
        if versions != {known}:
            raise InvalidInputError(
                f"{self.folder} holds results of model version {known}; this run's model is"
                f" {', '.join(sorted(str(v) for v in versions - {known}))}: use another --out"
            )

    def _write_manifest(self) -> None:
        _write_atomic(self.folder / MANIFEST, [json.dumps(self.manifest, indent=2) + "\n"])


def _check_same_run(folder: Path, earlier: dict[str, Any], now: dict[str, Any]) -> None:
    for key, what in (
        ("input", "of another input (or the input changed since)"),
        ("format", "of another input format"),
        ("shard_size", "with another --shard-size"),
        ("model", "with another --model"),
    ):
        if earlier.get(key) != now.get(key):
            raise InvalidInputError(
                f"{folder} holds a run {what}: rerun with the same input and arguments, or use another --out"
            )


def _line(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False) + "\n"


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _write_atomic(path: Path, lines: Sequence[str]) -> None:
    tmp = _temporary(path)
    with tmp.open("w", encoding="utf-8") as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _write_parquet(path: Path, results: Sequence[dict[str, Any]]) -> None:
    """A flat table of the results (one row per encounter; the full result as JSON in `result`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    code = pa.struct(
        [
            ("system", pa.string()),
            ("code", pa.string()),
            ("description", pa.string()),
            ("confidence", pa.float64()),
        ]
    )
    schema = pa.schema(
        [
            ("encounter_id", pa.string()),
            ("model_version", pa.string()),
            ("code_set_version", pa.string()),
            ("decision", pa.string()),
            ("reasons", pa.list_(pa.string())),
            ("codes", pa.list_(code)),
            ("result", pa.string()),
        ]
    )
    rows = [
        {
            "encounter_id": r["encounter_id"],
            "model_version": r["model_version"],
            "code_set_version": r["code_set_version"],
            "decision": r["routing"]["decision"],
            "reasons": r["routing"]["reasons"],
            "codes": [{k: c[k] for k in ("system", "code", "description", "confidence")} for c in r["codes"]],
            "result": json.dumps(r, ensure_ascii=False),
        }
        for r in results
    ]
    tmp = _temporary(path)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    tmp.replace(path)
