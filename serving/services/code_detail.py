"""The code detail behind GET /v1/codes/{system}/{code}, read from the one code-knowledge API (`CodeSets`)."""

from __future__ import annotations

from medcode.data.codesystems import CodeSets
from medcode.data.icd10cm import NOTE_KINDS
from medcode.serving.errors import InvalidRequest, NotFound, ServiceUnavailable
from medcode.serving.schemas.codes import (
    CodeDetailPublic,
    CodeNotePublic,
    CodeRefPublic,
    PathStepPublic,
    PcsOptionPublic,
    PcsStepPublic,
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


_PCS_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""ICD-10-PCS uses digits and letters except I and O."""


def pcs_step(code_sets: CodeSets, prefix: str) -> PcsStepPublic:
    """The valid values for the character after `prefix` (only those some valid code continues with), with
    their axis labels from the PCS tables: the builder walks section -> body system -> operation -> body
    part -> approach -> device -> qualifier."""
    compact = prefix.strip().upper()
    if len(compact) > 7 or any(c not in _PCS_CHARACTERS for c in compact):
        raise InvalidRequest(f"{prefix!r} is not the start of an ICD-10-PCS code", code="invalid_pcs_prefix")
    pcs = code_sets.icd10pcs
    if pcs is None:
        raise ServiceUnavailable(
            "no ICD-10-PCS release is installed (set the datasets folder)", code="no_pcs"
        )
    if compact and not pcs.is_prefix(compact):
        raise NotFound(f"no valid ICD-10-PCS code starts with {compact!r}", code="unknown_code")
    tables = pcs.tables
    chosen = [v.label for v in tables.axes(compact)] if tables is not None else []
    if len(compact) == 7:
        return PcsStepPublic(
            prefix=compact,
            chosen=chosen,
            position=None,
            axis=None,
            options=[],
            complete=True,
            title=pcs.title(compact),
        )
    position = len(compact) + 1
    axis: str | None = None
    options: list[PcsOptionPublic] = []
    for char in _PCS_CHARACTERS:
        if not pcs.is_prefix(compact + char):
            continue
        values = tables.axes(compact + char) if tables is not None else []
        label = values[-1].label if len(values) == position else ""
        if len(values) == position:
            axis = axis or values[-1].axis
        options.append(PcsOptionPublic(character=char, label=label))
    return PcsStepPublic(
        prefix=compact, chosen=chosen, position=position, axis=axis, options=options, complete=False
    )
