"""The rules' data files (model/rules/resources/*.json), read once and cached."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

RESOURCE_FILES = (
    "terms.json",
    "note_cues.json",
    "combinations.json",
    "age_sex_edits.json",
    "em_levels.json",
    "code_notes.json",
    "history_of.json",
    "status_codes.json",
    "pregnancy.json",
    "uncertainty.json",
    "sequelae.json",
    "excised_neoplasm.json",
)


@cache
def load_resource(name: str) -> dict[str, Any]:
    """One packaged data file as a dict (cached; callers must not mutate it)."""
    if name not in RESOURCE_FILES:
        raise ValueError(f"unknown rules resource {name!r}; expected one of {', '.join(RESOURCE_FILES)}")
    text = (resources.files("medcode.model.rules") / "resources" / name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
