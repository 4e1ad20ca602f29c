"""`medcode extract PATH|-`: the clinical mentions the text pipeline finds, as one JSON object.

Input is plain note text, or an encounter in the project's JSON format (DESIGN.md); output is
`{"mentions": [{"start", "end", "text", "type", "section", "assertion": {...}, "document_id",
"attributes", "concepts"}]}` with offsets into the text as received.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from medcode.commands.model import parse_input, read_input
from medcode.data.types import Encounter, Mention


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "extract",
        help="list the clinical mentions of a note (sections, assertion context, modifiers)",
        description=(
            "Run the clinical text pipeline on a note (plain text) or an encounter (JSON) and print "
            '{"mentions": [...]} with character offsets into the input text.'
        ),
    )
    parser.add_argument("path", metavar="PATH|-", help="a text or encounter JSON file, or - for stdin")
    parser.add_argument("--compact", action="store_true", help="print the JSON on one line")
    parser.add_argument(
        "--present-only",
        action="store_true",
        help="leave out negated, family and hypothetical mentions",
    )
    parser.set_defaults(func=run_extract, quick_exit=True)


def mention_json(mention: Mention) -> dict[str, Any]:
    """The DESIGN.md shape first (start, end, text, type, section, assertion), then the extra keys."""
    data = mention.model_dump()
    ordered = {key: data.pop(key) for key in ("start", "end", "text", "type", "section", "assertion")}
    ordered.update(data)
    return ordered


def import_spacy_without_torch() -> None:
    """Import spaCy with torch hidden. spaCy's thinc imports torch when it is installed (a second or more
    of CPU) only to offer it as a backend; the text pipeline never uses it, so `medcode extract` skips it.
    Later imports of torch in the process work as usual (thinc keeps running without it)."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # meanwhile `import torch` raises ImportError
    try:
        import spacy  # noqa: F401
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


def run_extract(args: argparse.Namespace) -> int:
    import_spacy_without_torch()
    from medcode.model.text import get_pipeline
    from medcode.settings import get_settings

    parsed = parse_input(read_input(args.path))
    settings = get_settings()
    pipeline = get_pipeline(settings.data_dir, settings.cache_dir)
    if isinstance(parsed, Encounter):
        mentions = pipeline.extract_encounter(parsed)
    else:
        mentions = pipeline.extract(parsed)
    if args.present_only:
        mentions = [m for m in mentions if m.assertion.is_present]
    payload = {"mentions": [mention_json(m) for m in mentions]}
    print(json.dumps(payload, indent=None if args.compact else 2, ensure_ascii=False))
    return 0
