"""Loading the text pipeline's data files (model/text/resources/) and matching phrases over tokens.

Rules, sections, abbreviations and modifiers are data files, not Python literals (STYLE.md): this module
reads them and offers `PhraseTrie`, a small token trie with longest match and number wildcards.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

RESOURCE_PACKAGE = "medcode.model.text.resources"
SHARED_RESOURCE_PACKAGE = "medcode.data.resources"
NUM = "<NUM>"
YEAR = "<YEAR>"
END = "<END>"
EOS = "\x00eos"
"""Appended to a sentence's words by callers that use the <END> wildcard."""
_CLAUSE_END = frozenset({",", ";", ".", ":", ")", "!", "?", EOS})
_NUMBER_WORDS = frozenset(
    [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "several",
        "few",
        "many",
        "a",
    ]
)
_NUMBER_RE = re.compile(r"^\d+(?:[.,]\d+)?$")
_YEAR_RE = re.compile(r"^(?:19|20)\d\d$")

V = TypeVar("V")


def resource_path(name: str) -> Path:
    """Path of a data file shipped in model/text/resources/, else in the shared data/resources/ (the
    abbreviation table), or `name` itself when it is a path."""
    candidate = Path(name)
    if candidate.is_absolute() or (candidate.exists() and candidate.is_file()):
        return candidate
    own = Path(str(resources.files(RESOURCE_PACKAGE) / name))
    if own.is_file():
        return own
    shared = Path(str(resources.files(SHARED_RESOURCE_PACKAGE) / name))
    return shared if shared.is_file() else own


def resource_stamp(name: str) -> tuple[str, int, int]:
    """Where a resource file is and its modification time and size: part of the keys of caches of what
    is built from it, so that a file replaced at the same path (a model pack saved again) is read again."""
    path = resource_path(name)
    try:
        stat = path.stat()
    except OSError:
        return str(path), 0, -1
    return str(path), stat.st_mtime_ns, stat.st_size


def load_json_resource(name: str) -> dict[str, Any]:
    """A JSON data file from model/text/resources/, or at a path (a model pack's copy); cached by path,
    modification time and size; callers must not mutate it."""
    return _load_json(*resource_stamp(name))


@lru_cache(maxsize=32)
def _load_json(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"resource {Path(path).name} must hold a JSON object")
    return data


def resources_fingerprint(names: Iterable[str], path_of: Callable[[str], Path] | None = None) -> str:
    """A short hash of the content of some resource files (part of cache keys); `path_of` finds a file by
    name (default: the installed resources)."""
    digest = hashlib.sha256()
    for name in sorted(names):
        path = (path_of or resource_path)(name)
        digest.update(name.encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token)) or token in _NUMBER_WORDS


def is_year(token: str) -> bool:
    return bool(_YEAR_RE.match(token))


class PhraseTrie(Generic[V]):
    """Token sequences -> values, with leftmost-longest matching; `<NUM>` and `<YEAR>` are wildcards."""

    _END = "\x00end"

    def __init__(self) -> None:
        self._root: dict[str, Any] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, tokens: Sequence[str], value: V) -> None:
        """Add a phrase; a phrase added twice keeps every value (in insertion order)."""
        if not tokens:
            return
        node = self._root
        for token in tokens:
            node = node.setdefault(token, {})
        values = node.setdefault(self._END, [])
        if not values:
            self._size += 1
        values.append(value)

    def _children(self, node: dict[str, Any], token: str) -> list[dict[str, Any]]:
        out = []
        child = node.get(token)
        if child is not None:
            out.append(child)
        if NUM in node and is_number(token):
            out.append(node[NUM])
        if YEAR in node and is_year(token):
            out.append(node[YEAR])
        if END in node and token in _CLAUSE_END:
            out.append(node[END])
        return out

    def longest_at(self, tokens: Sequence[str], start: int) -> tuple[int, list[V]] | None:
        """The longest phrase starting at `start`: (end index, exclusive; values) or None."""
        best: tuple[int, list[V]] | None = None
        frontier = [self._root]
        position = start
        while frontier and position < len(tokens):
            token = tokens[position]
            next_frontier: list[dict[str, Any]] = []
            for node in frontier:
                next_frontier.extend(self._children(node, token))
            position += 1
            for node in next_frontier:
                if self._END in node:
                    best = (position, node[self._END])
                    break
            frontier = next_frontier
        return best

    def find_all(self, tokens: Sequence[str]) -> list[tuple[int, int, list[V]]]:
        """Non-overlapping matches, longest first (ties: leftmost), in text order: (start, end, values).

        Like spaCy's `filter_spans`: "has no history of" reads as "has" + "no history of", since the
        three-word trigger beats the two-word one that overlaps it.
        """
        candidates: list[tuple[int, int, list[V]]] = []
        root = self._root
        wild_num = NUM in root
        wild_year = YEAR in root
        for position, token in enumerate(tokens):
            if (
                token not in root
                and not (wild_num and is_number(token))
                and not (wild_year and is_year(token))
            ):
                continue
            match = self.longest_at(tokens, position)
            if match is not None:
                candidates.append((position, match[0], match[1]))
        if len(candidates) <= 1:
            return candidates
        taken = [False] * len(tokens)
        chosen: list[tuple[int, int, list[V]]] = []
        for start, end, values in sorted(candidates, key=lambda c: (c[0] - c[1], c[0])):
            if any(taken[start:end]):
                continue
            for i in range(start, end):
                taken[i] = True
            chosen.append((start, end, values))
        chosen.sort(key=lambda c: c[0])
        return chosen
