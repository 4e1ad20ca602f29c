"""Custom attributes the pipeline steps write on docs, tokens and spans (registered once, idempotent).

Doc:  `_.sections` (list of `Section`), `_.token_sections` (section name per token),
      `_.header_tokens` (True for tokens inside a section header).
Span (in `doc.spans["mentions"]`): `_.is_negated`, `_.is_possible`, `_.is_historical`, `_.is_family`,
      `_.is_hypothetical`, `_.section`, `_.concepts`, `_.attributes`, `_.term`.
A mention is never dropped by context: it is only marked (STYLE.md).
"""

from __future__ import annotations

from spacy.tokens import Doc, Span

MENTIONS_KEY = "mentions"
ASSERTION_ATTRS: dict[str, str] = {
    "negated": "is_negated",
    "possible": "is_possible",
    "historical": "is_historical",
    "family": "is_family",
    "hypothetical": "is_hypothetical",
}
CATEGORY_TO_ASSERTION: dict[str, str] = {
    "NEGATED_EXISTENCE": "negated",
    "POSSIBLE_EXISTENCE": "possible",
    "HISTORICAL": "historical",
    "FAMILY": "family",
    "HYPOTHETICAL": "hypothetical",
}


def doc_text(doc: Doc) -> str:
    """The doc's text, read once per doc (`Doc.text` is rebuilt from the tokens on every access)."""
    text = doc.user_data.get(_TEXT_KEY)
    if not isinstance(text, str):
        text = doc.text
        doc.user_data[_TEXT_KEY] = text
    return text


_TEXT_KEY = "medcode.text"


def register_extensions() -> None:
    """Register every custom attribute the pipeline uses (safe to call many times)."""
    doc_defaults: dict[str, object] = {"sections": None, "token_sections": None, "header_tokens": None}
    for name, default in doc_defaults.items():
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=default)
    span_defaults: dict[str, object] = {attr: False for attr in ASSERTION_ATTRS.values()}
    span_defaults.update({"section": "unknown", "concepts": (), "attributes": None, "term": ""})
    for name, default in span_defaults.items():
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)
