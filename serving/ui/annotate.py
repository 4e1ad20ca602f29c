"""What the encounter page draws over a note besides the codes: section spans and clinical mentions.

Mentions (with their assertion: negated, family, hypothetical, ...) come from the serving model's own text
pipeline (`Coder.pipeline`, from its pack), so the coder sees what the model read; a model without one
reads notes with the installed pipeline (`model.text.get_pipeline()`), and so does the page. Sections from the pipeline when it offers them, else from header lines
("HISTORY OF PRESENT ILLNESS:", "Assessment and plan:"). Offsets index the document text as stored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from medcode.data.types import Document, Mention

logger = logging.getLogger(__name__)

_HEADER = re.compile(
    r"^[ \t]*(?P<label>[A-Za-z][A-Za-z/&,'() -]{1,60}?)[ \t]*(?P<sep>:|[ \t]-[ \t])",
    re.MULTILINE,
)
_MAX_HEADER_WORDS = 6


class SectionSpan(BaseModel):
    name: str
    label: str
    start: int = Field(ge=0)
    """Where the section's header starts."""
    header_end: int | None = Field(None, ge=0)
    """Where the header (with its ':' or ' - ') ends, when known."""
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
    starts: list[tuple[int, int, str]] = []
    for match in _HEADER.finditer(text):
        label = match.group("label").strip()
        if len(label.split()) > _MAX_HEADER_WORDS or not (label[0].isupper()):
            continue
        starts.append((match.start("label"), match.end("sep"), label))
    spans = []
    for index, (start, header_end, label) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        name = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "section"
        spans.append(SectionSpan(name=name, label=label, start=start, header_end=header_end, end=end))
    return spans


def _section_spans(raw: Any) -> list[SectionSpan]:
    """Section spans from the pipeline's section objects (name, header_start/start, header_end, end)."""
    spans = []
    for section in raw:
        get = section.get if isinstance(section, dict) else lambda key, s=section: getattr(s, key, None)
        start = get("header_start")
        start = get("start") if start is None else start
        end, header_end = get("end"), get("header_end")
        if not isinstance(start, int) or not isinstance(end, int):
            continue
        name = str(get("name") or "section")
        spans.append(
            SectionSpan(
                name=name,
                label=name.replace("_", " "),
                start=start,
                header_end=header_end if isinstance(header_end, int) else None,
                end=end,
            )
        )
    return spans


def _run_pipeline(
    pipeline: Any, text: str, document_id: str
) -> tuple[list[SectionSpan] | None, list[Mention]]:
    """Mentions, and the pipeline's own sections when its processed document carries them."""
    process, mentions_of = getattr(pipeline, "process", None), getattr(pipeline, "mentions_of", None)
    if not (callable(process) and callable(mentions_of)):
        return None, list(pipeline.extract(text, document_id))
    doc = process(text)
    raw = getattr(getattr(doc, "_", None), "sections", None)
    return (_section_spans(raw) if raw is not None else None), list(mentions_of(doc, document_id))


def _load_pipeline() -> Any | None:
    """The text pipeline, or None when it cannot be loaded (the page then shows no mention marks)."""
    try:
        from medcode.model.text import get_pipeline
        from medcode.settings import get_settings

        settings = get_settings()
        return get_pipeline(settings.data_dir, settings.cache_dir)
    except Exception as exc:  # the note must still be shown; the cause goes to the log
        logger.warning(
            "text pipeline not available (%s): notes are shown without mention marks", type(exc).__name__
        )
        return None


@lru_cache(maxsize=128)
def _annotate_with(
    pipeline: Any, text: str, document_id: str
) -> tuple[tuple[SectionSpan, ...], tuple[Mention, ...]]:
    sections, mentions = _run_pipeline(pipeline, text, document_id)
    if sections is None:
        sections = header_sections(text)
    return tuple(sections), tuple(mentions)


def _annotate_text(
    text: str, document_id: str, model_pipeline: Any | None
) -> tuple[tuple[SectionSpan, ...], tuple[Mention, ...], bool]:
    pipeline = model_pipeline if model_pipeline is not None else _load_pipeline()
    if pipeline is None:
        return tuple(header_sections(text)), (), False
    sections, mentions = _annotate_with(pipeline, text, document_id)
    return sections, mentions, True


def annotate(
    encounter_id: str, documents: Sequence[Document], pipeline: Any | None = None
) -> AnnotationsPublic:
    """The documents with sections and mentions; `pipeline`: the serving model's (`Coder.pipeline`), None
    for the installed one."""
    out = []
    available = True
    for doc in documents:
        sections, mentions, ok = _annotate_text(doc.text, doc.document_id, pipeline)
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
