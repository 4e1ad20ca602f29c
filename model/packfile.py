"""One gzipped JSON part of a model pack folder (the text lexicon, the code vectors' manifest, ...): written
without a timestamp (same content, same bytes), read back or refused with ModelNotFoundError."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from medcode.data.errors import ModelNotFoundError

T = TypeVar("T")

READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError)
"""What reading or parsing a damaged part raises (turned into ModelNotFoundError)."""


def write_json_gz(file: Path, payload: Any, *, sort_keys: bool = False) -> None:
    """Write `payload` as compact JSON, gzipped with no timestamp."""
    data = json.dumps(payload, separators=(",", ":"), sort_keys=sort_keys).encode("utf-8")
    with Path(file).open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(data)


def read_json_gz(folder: Path, name: str, what: str, parse: Callable[[Any], T]) -> T:
    """`parse` of the JSON in the pack part `folder/name`; ModelNotFoundError naming `what` (e.g. "text
    lexicon") when the part is absent, or when reading or parsing it fails."""
    file = Path(folder) / name
    if not file.is_file():
        raise ModelNotFoundError(
            f"model pack {folder} carries no {what} ({name}); retrain it with `medcode train`"
        )
    try:
        with gzip.open(file, "rt", encoding="utf-8") as fh:
            return parse(json.load(fh))
    except READ_ERRORS as exc:
        raise ModelNotFoundError(f"model pack {folder} has unreadable {what}: {exc}") from exc
