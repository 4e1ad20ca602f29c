"""What the encounter page draws over a note besides the codes: section spans and clinical mentions.

Mentions (with their assertion: negated, family, hypothetical, ...) come from the text pipeline
(`model.text.get_pipeline()`); sections from the pipeline when it offers them, else from header lines
("HISTORY OF PRESENT ILLNESS:", "Assessment and plan:"). Offsets index the document text as stored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from data.types import Document, Mention

logger = logging.getLogger(__name__)

_HEADER = re.compile(
    r"^[ \t]*(?P<label>[A-Za-z][A-Za-z/&,'() -]{1,60}?)[ \t]*(?::|[ \t]-[ \t])",
    re.MULTILINE,
)
_MAX_HEADER_WORDS = 6


class SectionSpan(BaseModel):
    name: str
    label: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class AnnotatedDocument(BaseModel):
    document_id: str
    type: str
    text: str
    sections: list[SectionSpan] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)


class AnnotationsPublic(BaseModel):
    encounter_id: str
    documents: list[AnnotatedDocument]
    mentions_available: bool
    """False when the text pipeline could not be loaded (the note is shown without mention marks)."""


def header_sections(text: str) -> list[SectionSpan]:
    """Sections from header lines: a short label at the start of a line followed by ':' (or ' - ')."""
    starts: list[tuple[int, str]] = []
    for match in _HEADER.finditer(text):
        label = match.group("label").strip()
        if len(label.split()) > _MAX_HEADER_WORDS or not (label[0].isupper()):
            continue
        starts.append((match.start("label"), label))
    spans = []
    for index, (start, label) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        name = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "section"
        spans.append(SectionSpan(name=name, label=label, start=start, end=end))
    return spans


def _pipeline_sections(pipeline: Any, text: str) -> list[SectionSpan] | None:
    """Sections from the pipeline when it exposes `sections(text)`; None when it does not."""
    method = getattr(pipeline, "sections", None)
    if not callable(method):
        return None
    spans = []
    for raw in method(text):
        get = raw.get if isinstance(raw, dict) else lambda key, r=raw: getattr(r, key, None)
        start, end = get("start"), get("end")
        name = str(get("name") or get("section") or "section")
        if not isinstance(start, int) or not isinstance(end, int):
            continue
        label = str(get("label") or get("title") or name.replace("_", " "))
        spans.append(SectionSpan(name=name, label=label, start=start, end=end))
    return spans


def _load_pipeline() -> Any | None:
    try:
        from model.text import get_pipeline
    except ImportError:
        logger.warning("text pipeline not available: the UI shows notes without mention marks")
        return None
    return get_pipeline()


@lru_cache(maxsize=128)
def _annotate_text(text: str, document_id: str) -> tuple[tuple[SectionSpan, ...], tuple[Mention, ...], bool]:
    pipeline = _load_pipeline()
    if pipeline is None:
        return tuple(header_sections(text)), (), False
    mentions = pipeline.extract(text, document_id)
    sections = _pipeline_sections(pipeline, text)
    if sections is None:
        sections = header_sections(text)
    return tuple(sections), tuple(mentions), True


def annotate(encounter_id: str, documents: Sequence[Document]) -> AnnotationsPublic:
    out = []
    available = True
    for doc in documents:
        sections, mentions, ok = _annotate_text(doc.text, doc.document_id)
        available = available and ok
        out.append(
            AnnotatedDocument(
                document_id=doc.document_id,
                type=doc.type,
                text=doc.text,
                sections=list(sections),
                mentions=[m.model_copy(update={"document_id": doc.document_id}) for m in mentions],
            )
        )
    return AnnotationsPublic(encounter_id=encounter_id, documents=out, mentions_available=available)
