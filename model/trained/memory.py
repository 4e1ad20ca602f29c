"""Sentence memory: training sentences known to support a code (e.g. CodiEsp-X evidence located in the
English text), matched against the sentences of a new note with the sentence encoder.

A note sentence close to a remembered sentence proposes that sentence's codes, with the note sentence as
evidence. Scores per code: the best similarity, how many note sentences propose it, and their summed
similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medcode.model.candidates.dense import steady


@dataclass(frozen=True, slots=True)
class MemoryHit:
    score: float
    """Best cosine similarity between a note sentence and a remembered sentence of the code."""
    sentence: int
    """Index of the note sentence with that similarity."""
    sentences: int
    """How many note sentences propose the code."""
    total: float


class SentenceMemory:
    def __init__(
        self, vectors: np.ndarray, codes: list[list[str]], k: int = 8, min_score: float = 0.55
    ) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(
            -1, vectors.shape[-1] if vectors.size else 384
        )
        self.codes = codes
        self.k = k
        self.min_score = min_score

    def __len__(self) -> int:
        return len(self.codes)

    def query(self, sentence_vectors: np.ndarray | None) -> dict[str, MemoryHit]:
        if sentence_vectors is None or len(sentence_vectors) == 0 or len(self.codes) == 0:
            return {}
        sims = steady(sentence_vectors @ self.vectors.T)
        k = min(self.k, sims.shape[1])
        best: dict[str, list[float | int]] = {}
        for s_idx, row in enumerate(sims):
            top = np.argpartition(-row, k - 1)[:k]
            seen: set[str] = set()
            for j in top:
                score = float(row[j])
                if score < self.min_score:
                    continue
                for code in self.codes[j]:
                    entry = best.get(code)
                    if entry is None:
                        best[code] = [score, s_idx, 1, score]
                        seen.add(code)
                        continue
                    if code not in seen:
                        seen.add(code)
                        entry[2] = int(entry[2]) + 1
                        entry[3] = float(entry[3]) + score
                    if score > float(entry[0]):
                        entry[0], entry[1] = score, s_idx
        return {c: MemoryHit(float(v[0]), int(v[1]), int(v[2]), float(v[3])) for c, v in best.items()}

    def state(self) -> tuple[np.ndarray, dict[str, Any]]:
        return self.vectors, {"codes": self.codes, "k": self.k, "min_score": self.min_score}

    @classmethod
    def from_state(cls, vectors: np.ndarray, meta: dict[str, Any]) -> SentenceMemory:
        return cls(vectors, [list(c) for c in meta["codes"]], int(meta["k"]), float(meta["min_score"]))
