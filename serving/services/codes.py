"""Code look-up and search for the service, over the one code-knowledge API (`data.codesystems.CodeSets`).

`lookup_code` validates codes coders add or choose as replacements (ICD-10-CM, ICD-10-PCS, HCPCS, CPT, as
the configured datasets folder and CPT file provide them). `search_codes` serves the UI's typeahead through
`data.search`, each hit with the code sets' billable flag.
"""

from __future__ import annotations

import logging
import re

from pydantic import BaseModel

from medcode.data.codesystems import CodeInfo, CodeSets, load_code_sets
from medcode.data.search import CodeSearch, SearchHit, get_code_search
from medcode.settings import get_settings

logger = logging.getLogger(__name__)


class CodeHitPublic(BaseModel):
    system: str
    code: str
    title: str
    billable: bool | None = None
    score: float | None = None


class CodeSearchPublic(BaseModel):
    query: str
    system: str | None
    hits: list[CodeHitPublic]


def normalize_key(code: str) -> str:
    """Case-, dot- and space-insensitive form used to match codes a client names."""
    return re.sub(r"[\s.]", "", code).upper()


def configured_code_sets() -> CodeSets:
    """The code sets the service's settings name (datasets folder, licensed CPT file)."""
    settings = get_settings()
    return load_code_sets(settings.data_dir, settings.cpt_file)


def configured_code_search() -> CodeSearch:
    """The coders' code search over the configured code sets, cached under the settings' cache folder."""
    return get_code_search(configured_code_sets(), get_settings().cache_dir)


def lookup_code(code: str, system: str | None = None) -> CodeInfo | None:
    """The canonical code, system, title and billable flag; None when the code sets do not know the code
    (or `system` names no code system)."""
    try:
        return configured_code_sets().lookup(code, system)
    except ValueError:  # an unknown system name
        return None


def billable(code: str, system: str | None = None) -> bool | None:
    """Whether the code can stand on a claim as written (an ICD-10-PCS table prefix never can); None when
    the code sets cannot tell."""
    try:
        return configured_code_sets().billable(code, system)
    except ValueError:  # an unknown system name
        return None


def search_codes(query: str, system: str | None = None, limit: int = 20) -> CodeSearchPublic:
    hits = configured_code_search().search(query, system=system, limit=limit)
    return CodeSearchPublic(query=query, system=system, hits=[_public(hit) for hit in hits[:limit]])


def _public(hit: SearchHit) -> CodeHitPublic:
    return CodeHitPublic(
        system=hit.system,
        code=hit.code,
        title=hit.title,
        billable=billable(hit.code, hit.system or None),
        score=hit.score,
    )
