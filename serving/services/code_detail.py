"""The code detail behind GET /v1/codes/{system}/{code}, read from the one code-knowledge API (`CodeSets`)."""

from __future__ import annotations

from medcode.data.codesystems import CodeSets
from medcode.data.icd10cm import NOTE_KINDS
from medcode.serving.errors import NotFound
from medcode.serving.schemas.codes import (
    CodeDetailPublic,
    CodeNotePublic,
    CodeRefPublic,
    PathStepPublic,
    SeventhCharacterPublic,
)

_CM = "ICD-10-CM"


def code_detail(code_sets: CodeSets, system: str, code: str) -> CodeDetailPublic:
    """The code's place in its system, its children and, for ICD-10-CM, its notes and 7th characters;
    `NotFound` when the system does not know the code."""
    info = code_sets.lookup(code, system)
    if info is None:
        raise NotFound(f"{system} has no code {code!r}", code="unknown_code")
    if info.system != _CM:
        children = _pcs_children(code_sets, info.code) if info.system == "ICD-10-PCS" else []
        return CodeDetailPublic(
            system=info.system,
            code=info.code,
            title=info.title,
            billable=info.billable,
            path=[],
            children=children,
            notes=[],
            seventh_characters=[],
        )
    tabular = code_sets.icd10cm
    entry = tabular[info.code]
    lineage = [*reversed(tabular.parents(entry.code)), entry.code]
    path = [
        PathStepPublic(level="chapter", code=entry.chapter, title=tabular.chapter(entry.chapter).title),
        PathStepPublic(level="block", code=entry.block, title=tabular.block(entry.block).title),
    ]
    for depth, step in enumerate(lineage):
        level = "category" if depth == 0 else ("code" if step == entry.code else "subcategory")
        path.append(PathStepPublic(level=level, code=step, title=tabular[step].title))
    notes = [CodeNotePublic(kind="inclusion", where=entry.code, text=t) for t in entry.inclusion_terms]
    for where in reversed(lineage):
        notes.extend(CodeNotePublic(kind="includes", where=where, text=t) for t in tabular[where].includes)
    for kind in NOTE_KINDS:
        notes.extend(
            CodeNotePublic(kind=kind, where=where, text=text)  # type: ignore[arg-type]
            for where, text in tabular.applicable_notes(entry.code, kind)
        )
    children = [
        CodeRefPublic(code=child, title=tabular[child].title, billable=tabular[child].billable)
        for child in tabular.children(entry.code)
    ]
    sevenths = []
    if entry.seventh_char is None:
        by_char = {
            tabular[c].seventh_char: c for c in tabular.children(entry.code) if tabular[c].seventh_char
        }
        sevenths = [
            SeventhCharacterPublic(character=char, meaning=meaning, code=by_char.get(char))
            for char, meaning in entry.seventh_chars.items()
        ]
    return CodeDetailPublic(
        system=_CM,
        code=entry.code,
        title=entry.title,
        billable=entry.billable,
        path=path,
        children=children,
        notes=notes,
        seventh_characters=sevenths,
        seventh_character_note=entry.seventh_char_note if sevenths else None,
    )


def _pcs_children(code_sets: CodeSets, code: str) -> list[CodeRefPublic]:
    """For a 4-character ICD-10-PCS table prefix, its complete codes (what completes it)."""
    pcs = code_sets.icd10pcs
    if pcs is None or len(code) >= 7:
        return []
    return [CodeRefPublic(code=c, title=t, billable=True) for c, t in pcs.items() if c.startswith(code)][:200]
