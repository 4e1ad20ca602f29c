"""The code detail a coder drills into from a search hit: where the code sits, what completes it, its notes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

NoteKind = Literal[
    "inclusion", "includes", "excludes1", "excludes2", "code_first", "use_additional", "code_also"
]


class CodeRefPublic(BaseModel):
    code: str
    title: str
    billable: bool | None = None


class PathStepPublic(BaseModel):
    level: Literal["chapter", "block", "category", "subcategory", "code"]
    code: str
    """The chapter number, the block range ("S70-S79") or the code."""
    title: str


class CodeNotePublic(BaseModel):
    kind: NoteKind
    where: str
    """The code, block or chapter the note is written at (notes of ancestors apply to their children)."""
    text: str


class SeventhCharacterPublic(BaseModel):
    character: str
    meaning: str
    code: str | None = None
    """The complete code with this 7th character, when the tabular lists it."""


class CodeDetailPublic(BaseModel):
    system: str
    code: str
    title: str
    billable: bool
    path: list[PathStepPublic]
    children: list[CodeRefPublic]
    """The codes one level down: what completes a header."""
    notes: list[CodeNotePublic]
    seventh_characters: list[SeventhCharacterPublic]
    seventh_character_note: str | None = None


class PcsOptionPublic(BaseModel):
    character: str
    label: str


class PcsStepPublic(BaseModel):
    """One step of the ICD-10-PCS builder: the characters chosen so far and the valid values of the next."""

    prefix: str
    chosen: list[str]
    """The axis labels of the characters chosen so far ("Medical and Surgical", "Gastrointestinal System")."""
    position: int | None
    """1..7: the position the options fill; None once the code is complete."""
    axis: str | None
    options: list[PcsOptionPublic]
    complete: bool
    title: str | None = None
    """The code's title once complete."""
