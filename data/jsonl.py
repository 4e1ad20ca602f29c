"""The project's JSONL corpus format: one encounter JSON object (DESIGN.md) per line.

Blank lines are skipped. A bad line raises InvalidInputError naming the file and line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.types import Encounter


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "encounter"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_encounter_line(line: str, where: str = "line") -> Encounter:
    """One JSONL line to an Encounter; errors name `where` (e.g. "file.jsonl:12")."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where}: expected a JSON object, got {type(data).__name__}")
    try:
        return Encounter.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"{where}: invalid encounter: {_describe(exc)}") from None


def iter_jsonl(path: Path) -> Iterator[Encounter]:
    if not path.is_file():
        raise DatasetNotFoundError(f"JSONL file not found: {path}")
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            encounter = parse_encounter_line(line, where)
            if encounter.encounter_id in seen:
                raise InvalidInputError(
                    f"{where}: encounter_id {encounter.encounter_id!r} repeats line {seen[encounter.encounter_id]}"
                )
            seen[encounter.encounter_id] = lineno
            yield encounter


def read_jsonl(path: Path) -> list[Encounter]:
    """All encounters of a JSONL file."""
    return list(iter_jsonl(path))


def encounter_to_json(encounter: Encounter) -> str:
    return json.dumps(encounter.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


def write_jsonl(encounters: Iterable[Encounter], path: Path) -> int:
    """Write encounters one per line (UTF-8); returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for encounter in encounters:
            handle.write(encounter_to_json(encounter))
            handle.write("\n")
            count += 1
    tmp.replace(path)
    return count
