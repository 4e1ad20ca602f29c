"""Code look-up and search over the code sets, through the data package.

`lookup_code` validates codes coders add or choose as replacements: `data.codesystems` (ICD-10-CM,
ICD-10-PCS, HCPCS, CPT) when present, else ICD-10-CM alone from `data.icd10cm`. `search_codes` serves
the UI's typeahead through `data.search.get_code_search()`, with a plain title scan of ICD-10-CM as a
fallback while that module does not exist.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from medcode.data.codesystems import CodeSets, load_code_sets
from medcode.data.search import CodeSearch, get_code_search
from medcode.settings import get_settings

logger = logging.getLogger(__name__)

SYSTEMS = ("ICD-10-CM", "ICD-10-PCS", "HCPCS", "CPT")
_FORMATS = {
    "ICD-10-CM": re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"),
    "ICD-10-PCS": re.compile(r"^[0-9A-HJ-NP-Z]{7}$"),
    "HCPCS": re.compile(r"^[A-V][0-9]{4}$"),
    "CPT": re.compile(r"^[0-9]{4}[0-9FTU]$"),
}


@dataclass(frozen=True)
class CodeRef:
    system: str
    code: str
    title: str
    billable: bool | None = None


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


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def configured_code_sets() -> CodeSets:
    """The code sets the service's settings name (datasets folder, licensed CPT file)."""
    settings = get_settings()
    return load_code_sets(settings.data_dir, settings.cpt_file)


def configured_code_search() -> CodeSearch:
    """The coders' code search over the configured code sets, cached under the settings' cache folder."""
    return get_code_search(configured_code_sets(), get_settings().cache_dir)


def guess_system(code: str) -> str | None:
    """The code system a bare code's shape suggests (ICD-10-CM first)."""
    key = normalize_key(code)
    for system in ("ICD-10-CM", "ICD-10-PCS", "HCPCS", "CPT"):
        if _FORMATS[system].match(key):
            return system
    return None


def lookup_code(code: str, system: str | None = None) -> CodeRef | None:
    """The canonical code, system and title; None when the code sets do not know the code."""
    codesystems = _optional_module("medcode.data.codesystems")
    if codesystems is not None:
        try:
            info = configured_code_sets().lookup(code, system)
        except ValueError:  # an unknown system name
            return None
        if info is None:
            return None
        return CodeRef(info.system, info.code, info.title, getattr(info, "billable", None))
    system = system or guess_system(code)
    if system == "ICD-10-CM":
        icd10cm = _optional_module("medcode.data.icd10cm")
        if icd10cm is not None:
            table = icd10cm.load_icd10cm()
            try:
                entry = table.get(table.normalize(code))
            except Exception:  # a malformed code
                return None
            return None if entry is None else CodeRef("ICD-10-CM", entry.code, entry.title, entry.billable)
    if system in _FORMATS and _FORMATS[system].match(normalize_key(code)):
        logger.debug("code set for %s not available; accepting %s on its format", system, code)
        return CodeRef(system, normalize_key(code), "", None)
    return None


def search_codes(query: str, system: str | None = None, limit: int = 20) -> CodeSearchPublic:
    search = _optional_module("medcode.data.search")
    if search is not None:
        hits = _hits_from(configured_code_search().search(query, system=system, limit=limit))
    else:
        hits = _scan_icd10cm(query, limit) if system in (None, "ICD-10-CM") else []
    return CodeSearchPublic(query=query, system=system, hits=[_with_billable(h) for h in hits[:limit]])


def _with_billable(hit: CodeHitPublic) -> CodeHitPublic:
    """The hit with the code sets' billable flag (the search index does not carry it); an ICD-10-PCS code
    shorter than 7 characters is a table prefix, never billable."""
    if hit.billable is not None:
        return hit
    if hit.system == "ICD-10-PCS" and len(normalize_key(hit.code)) != 7:
        return hit.model_copy(update={"billable": False})
    ref = lookup_code(hit.code, hit.system or None)
    return hit.model_copy(update={"billable": None if ref is None else ref.billable})


def _hits_from(raw: Any) -> list[CodeHitPublic]:
    hits = []
    for hit in raw:
        get = hit.get if isinstance(hit, dict) else lambda name, h=hit: getattr(h, name, None)
        hits.append(
            CodeHitPublic(
                system=str(get("system") or ""),
                code=str(get("code") or ""),
                title=str(get("title") or get("description") or ""),
                billable=get("billable"),
                score=get("score"),
            )
        )
    return hits


@lru_cache(maxsize=1)
def _icd10cm_titles() -> tuple[tuple[str, str, str, bool], ...]:
    icd10cm = _optional_module("medcode.data.icd10cm")
    if icd10cm is None:
        return ()
    return tuple((e.code, e.title, e.title.lower(), e.billable) for e in icd10cm.load_icd10cm().entries())


def _scan_icd10cm(query: str, limit: int) -> list[CodeHitPublic]:
    words = query.lower().split()
    key = normalize_key(query)
    hits: list[tuple[int, CodeHitPublic]] = []
    for code, title, lowered, billable in _icd10cm_titles():
        if normalize_key(code).startswith(key) or all(w in lowered for w in words):
            rank = 0 if normalize_key(code).startswith(key) else 1 + len(lowered)
            hits.append((rank, CodeHitPublic(system="ICD-10-CM", code=code, title=title, billable=billable)))
    hits.sort(key=lambda pair: (pair[0], pair[1].code))
    return [hit for _, hit in hits[:limit]]
