"""Clinical text pipeline: sections, sentences, mentions with modifiers and assertion context.

    from medcode.model.text import full_pipeline
    mentions = full_pipeline(data_dir).extract(note_text, document_id="d1")

`build_pipeline(terms=[...])` makes a pipeline over an explicit small lexicon; a model pack carries its own
(`model.text.pipeline.load_pipeline`). The package imports spaCy only when one of these names is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medcode.model.text.lexicon import Lexicon, TermSpec
    from medcode.model.text.pipeline import TextPipeline, build_pipeline
    from medcode.model.text.sources import full_pipeline, get_pipeline

__all__ = ["Lexicon", "TermSpec", "TextPipeline", "build_pipeline", "full_pipeline", "get_pipeline"]


def __getattr__(name: str) -> Any:
    if name in ("TextPipeline", "build_pipeline"):
        from medcode.model.text import pipeline

        return getattr(pipeline, name)
    if name in ("full_pipeline", "get_pipeline"):
        from medcode.model.text import sources

        return getattr(sources, name)
    if name in ("Lexicon", "TermSpec"):
        from medcode.model.text import lexicon

        return getattr(lexicon, name)
    raise AttributeError(f"module 'medcode.model.text' has no attribute {name!r}")
