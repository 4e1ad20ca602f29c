"""Cache files: something slow to build (a parsed code set, a search index, code-name vectors) kept under
a cache folder the caller names, keyed by what it was built from. A cache is never needed: a file that
cannot be read is ignored (and rebuilt by the caller), a file that cannot be written is skipped, each with a
warning; a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def read_cache(file: Path, read: Callable[[BinaryIO], T], what: str) -> T | None:
    """`read` of the open cache `file`; None when it is absent or `read` fails (`what` names it in the
    warning, e.g. "ICD-10-CM cache")."""
    if not file.is_file():
        return None
    try:
        with file.open("rb") as handle:
            return read(handle)
    except Exception as exc:  # a broken, stale or foreign cache file is rebuilt, never fatal
        logger.warning("ignoring unreadable %s %s: %s", what, file, exc)
        return None


def write_cache(file: Path, write: Callable[[BinaryIO], None], what: str) -> bool:
    """`write` into a temporary file beside `file` (one per writer), renamed over `file` once complete;
    False (with a warning naming `what`) when the folder or the file cannot be written."""
    tmp = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as handle:
            write(handle)
        tmp.replace(file)
        return True
    except OSError as exc:
        logger.warning("could not write the %s %s: %s", what, file, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
