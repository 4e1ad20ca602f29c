"""CodiEsp-X evidence located in the English translation, at sentence level.

CodiEsp-X gives each code's evidence as character spans in the Spanish original; the English file is the
machine translation, one sentence per line. The Spanish text is cut into sentences and aligned to the
English lines by length (Gale-Church style dynamic programming with 1-1, 1-2, 2-1, 1-0 and 0-1 steps);
an evidence span then points at the English line(s) aligned with its Spanish sentence.

The result — (English sentence, code) pairs — is supervised phrase-to-code data for the default model's
sentence memory.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_ES_SENTENCE_END = re.compile(r"(?:\n+|(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÑ0-9¿¡(\"']))")

# (spanish sentences, english lines) -> penalty added to the length cost
_STEPS: dict[tuple[int, int], float] = {
    (1, 1): 0.0,
    (1, 2): 2.0,
    (2, 1): 2.0,
    (1, 0): 4.0,
    (0, 1): 4.0,
    (2, 2): 3.5,
}


def spanish_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the Spanish sentences."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in [*_ES_SENTENCE_END.finditer(text), None]:
        end = match.start() if match is not None else len(text)
        s, e = start, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
        if match is not None:
            start = match.end()
    return spans


def english_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the non-empty lines of the English text."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped:
            lead = len(line) - len(line.lstrip())
            spans.append((pos + lead, pos + lead + len(stripped)))
        pos += len(line) + 1
    return spans


def align(es_lengths: Sequence[int], en_lengths: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """Length-based alignment: groups of (spanish indices, english indices) in order."""
    n, m = len(es_lengths), len(en_lengths)
    ratio = (sum(en_lengths) + 1) / (sum(es_lengths) + 1)
    inf = math.inf
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if cost[i][j] == inf:
                continue
            for (di, dj), penalty in _STEPS.items():
                ni, nj = i + di, j + dj
                if ni > n or nj > m:
                    continue
                les = sum(es_lengths[i:ni]) * ratio
                len_ = sum(en_lengths[j:nj])
                c = cost[i][j] + penalty + (les - len_) ** 2 / (les + len_ + 10.0) / 10.0
                if c < cost[ni][nj]:
                    cost[ni][nj] = c
                    back[ni][nj] = (di, dj)
    groups: list[tuple[list[int], list[int]]] = []
    i, j = n, m
    while i > 0 or j > 0:
        step = back[i][j]
        if step is None:
            break
        di, dj = step
        groups.append((list(range(i - di, i)), list(range(j - dj, j))))
        i, j = i - di, j - dj
    groups.reverse()
    return groups


def english_evidence(
    spanish: str, english: str, spans: Sequence[tuple[int, int]]
) -> list[list[tuple[int, int]]]:
    """For each Spanish (start, end) span, the English line spans it falls in (may be empty)."""
    es = spanish_sentences(spanish)
    en = english_lines(english)
    if not es or not en:
        return [[] for _ in spans]
    groups = align([e - s for s, e in es], [e - s for s, e in en])
    en_of_es: dict[int, list[int]] = {}
    for es_ids, en_ids in groups:
        for i in es_ids:
            en_of_es[i] = en_ids
    out: list[list[tuple[int, int]]] = []
    for start, _end in spans:
        idx = next((k for k, (s, e) in enumerate(es) if s <= start < e), None)
        if idx is None:
            idx = min(range(len(es)), key=lambda k: abs(es[k][0] - start))
        out.append([en[j] for j in en_of_es.get(idx, [])])
    return out


def codiesp_sentence_evidence(data_dir: Path, split: str) -> dict[str, list[tuple[str, str, int, int]]]:
    """document id -> [(task, code, start, end)] English sentence spans supporting each gold code."""
    from medcode.data.codiesp import read_spanish_text, read_x, split_dir

    folder = split_dir(data_dir, split)
    by_doc: dict[str, list[tuple[str, str, tuple[int, int]]]] = defaultdict(list)
    for rec in read_x(data_dir, split):
        if rec.spans:
            by_doc[rec.document_id].append((rec.task, rec.code, rec.spans[0]))
    out: dict[str, list[tuple[str, str, int, int]]] = {}
    for doc_id, items in by_doc.items():
        en_file = folder / "text_files_en" / f"{doc_id}.txt"
        if not en_file.is_file():
            continue
        try:
            spanish = read_spanish_text(data_dir, split, doc_id)
        except Exception:  # a missing original only loses that document's evidence
            continue
        english = en_file.read_text(encoding="utf-8")
        located = english_evidence(spanish, english, [span for _, _, span in items])
        found: list[tuple[str, str, int, int]] = []
        for (task, code, _), lines in zip(items, located, strict=True):
            for s, e in lines:
                found.append((task, code, s, e))
        out[doc_id] = sorted(set(found))
    log.info("CodiEsp %s: English evidence sentences for %d documents", split, len(out))
    return out
