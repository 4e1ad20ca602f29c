"""`medcode suggest PATH|-`: one encounter (plain note text or encounter JSON) -> Result JSON on stdout."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.icd10cm import load_icd10cm
from medcode.data.jsonl import parse_encounter_line
from medcode.data.types import Document, Encounter
from medcode.settings import add_model_argument


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "suggest",
        help="suggest codes for one encounter (note text or encounter JSON)",
        description=(
            "Read one encounter — a plain-text note, or the encounter JSON of the API — from PATH or "
            "stdin ('-') and print the result JSON (codes, confidence, evidence, routing) on stdout."
        ),
    )
    parser.add_argument("path", help="a note (.txt) or encounter JSON file, or '-' for stdin")
    add_model_argument(parser)
    parser.add_argument("--encounter-id", default="e1", help="encounter id for plain-text input (default e1)")
    parser.add_argument("--compact", action="store_true", help="one-line JSON")
    parser.add_argument("--no-candidates", action="store_true", help="leave the ranked alternatives out")
    parser.set_defaults(func=run_suggest, quick_exit=True)


def read_input(path: str) -> str:
    """The text of PATH, or of stdin for '-' (the input of `suggest` and `extract`)."""
    if path == "-":
        return sys.stdin.read()
    file = Path(path)
    if not file.is_file():
        raise DatasetNotFoundError(f"input file not found (no such file): {path}")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_input(raw: str) -> Encounter | str:
    """An encounter when the input is a JSON object (read as one line of the JSONL format), else the note
    text itself (the input of `suggest` and `extract`)."""
    if not raw.strip():
        raise InvalidInputError("the input is empty: give a note or an encounter JSON object")
    if not raw.lstrip().startswith("{"):
        return raw
    return parse_encounter_line(raw, "input")


def parse_encounter(raw: str, encounter_id: str = "e1") -> Encounter:
    """Encounter JSON when the input is a JSON object, else the whole input is one note."""
    from medcode.settings import get_settings

    parsed = parse_input(raw)
    if isinstance(parsed, Encounter):
        encounter = parsed
    else:
        encounter = Encounter(encounter_id=encounter_id, documents=[Document(document_id="d1", text=raw)])
    limit = get_settings().max_note_chars
    for doc in encounter.documents:
        if len(doc.text) > limit:
            raise InvalidInputError(
                f"document {doc.document_id} has {len(doc.text)} characters; the limit is {limit}"
            )
    return encounter


def run_suggest(args: argparse.Namespace) -> int:
    from medcode.commands.text import import_spacy_without_torch
    from medcode.settings import get_settings

    # spaCy without torch, a pack's rankers and TF-IDF and (MEDCODE_ENCODER_BACKEND=auto) its sentence
    # encoder in numpy: suggesting imports neither torch nor scikit-learn
    import_spacy_without_torch()

    settings = get_settings()
    encounter = parse_encounter(read_input(args.path), args.encounter_id)
    load_icd10cm(settings.cache_dir)
    registry = dataclasses.replace(settings.registry, runtime=settings.runtime(one_note=True))
    coder = registry.load_model(args.model or settings.model_ref)
    result = coder.suggest(encounter)
    data = result.model_dump(mode="json")
    if args.no_candidates:
        data.pop("candidates", None)
    print(json.dumps(data, indent=None if args.compact else 2, ensure_ascii=False))
    return 0
