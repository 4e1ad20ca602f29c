"""A code set held in memory as normalised code -> entry, with the lookups every such set offers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar, Generic, TypeVar

from medcode.data.errors import UnknownCodeError

Entry = TypeVar("Entry")


def compact_code(code: str) -> str:
    """A code without white space, in upper case: the form HCPCS and CPT codes are kept in (" j1611" -> "J1611")."""
    return re.sub(r"\s", "", code).upper()


class CodeTable(Generic[Entry]):
    """Mapping-like lookups over `_codes` (keys in `normalize` form); a subclass names the set."""

    name: ClassVar[str]
    _codes: dict[str, Entry]

    normalize = staticmethod(compact_code)

    def __len__(self) -> int:
        return len(self._codes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._codes)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.normalize(code) in self._codes

    def get(self, code: str) -> Entry | None:
        return self._codes.get(self.normalize(code))

    def __getitem__(self, code: str) -> Entry:
        entry = self.get(code)
        if entry is None:
            raise UnknownCodeError(code, self.name)
        return entry

    def entries(self) -> Iterator[Entry]:
        return iter(self._codes.values())
