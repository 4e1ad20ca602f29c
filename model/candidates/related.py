"""Relatives of strong candidates as candidates of their own (issue 16: the pool is the limit).

CodiEsp, like a coder, often codes a sibling, a child or the parent of the code the note's words retrieve
best ("lymphadenopathy" retrieves R59.9, the gold is R59.0; "fracture of the femur" retrieves the category
and the gold is a subcategory). For each present mention, its strongest hits (any mention source) are
seeds; the seed's relatives in the tabular (children and grandchildren, siblings under the same parent,
the parent) are scored against the mention's own query by the lexical index, and the best of them are
recorded as hits of source "related".

A related hit carries: `score` / `query_coverage` = the relative's own lexical match with the mention (0 when
none of its names shares a word), `term_coverage` = the seed's score, `rank` = the relation (CHILD,
SIBLING, PARENT). Only present mentions seed (an absent mention never supports a code, nor its relatives).
"""

from __future__ import annotations

from collections.abc import Iterable

from medcode.model.catalog import CodeCatalog

SOURCE = "related"
CHILD, SIBLING, PARENT = 0, 1, 2


def relatives(catalog: CodeCatalog, system: str, code: str) -> dict[str, int]:
    """The codes near `code` in the tabular, with their relation: children and grandchildren, siblings
    (other children of its parent; none for a three-character category, whose siblings are unrelated
    conditions), and its parent. The code itself is not included."""
    info = catalog.info(system, code)
    if info is None:
        return {}
    out: dict[str, int] = {}
    for child in catalog.children(system, code):
        out.setdefault(child, CHILD)
        for grandchild in catalog.children(system, child):
            out.setdefault(grandchild, CHILD)
    parent = info.parent
    if parent:
        if len(code.replace(".", "")) > 3:
            for sibling in catalog.children(system, parent):
                if sibling != code:
                    out.setdefault(sibling, SIBLING)
        out.setdefault(parent, PARENT)
    return out


def seeds_of(hits: Iterable[tuple[str, float]], top: int, min_score: float) -> list[tuple[str, float]]:
    """A mention's seeds: its best `top` distinct codes scoring at least `min_score`, best first (ties by
    code, so the choice does not depend on the order the sources ran in)."""
    best: dict[str, float] = {}
    for code, score in hits:
        if score >= min_score and score > best.get(code, -1.0):
            best[code] = score
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
