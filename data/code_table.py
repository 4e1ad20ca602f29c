"""A code set held in memory as normalised code -> entry, with the lookups every such set offers."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import ClassVar, Generic, TypeVar

from medcode.data.errors import UnknownCodeError

Entry = TypeVar("Entry")


def compact_code(code: str) -> str:
    """A code without white space, in upper case: the form HCPCS and CPT codes are kept in (" j1611" -> "J1611")."""
    return re.sub(r"\s", "", code).upper()


class CodeSet(Generic[Entry]):
    """What every code set offers: length, iteration and membership over the codes that key `_codes`
    (in `normalize` form), and `code_set[code]` over the subclass's `get` (UnknownCodeError naming the set
    when it finds nothing)."""

    name: ClassVar[str]
    _codes: Mapping[str, object]

    normalize = staticmethod(compact_code)

    def __len__(self) -> int:
        return len(self._codes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._codes)

    def __contains__(self, code: object) -> bool:
        # most callers pass the stored form: no normalising then
        return isinstance(code, str) and (code in self._codes or self.normalize(code) in self._codes)

    def get(self, code: str) -> Entry | None:
        raise NotImplementedError

    def __getitem__(self, code: str) -> Entry:
        entry = self.get(code)
        if entry is None:
            raise UnknownCodeError(code, self.name)
        return entry


class CodeTable(CodeSet[Entry]):
    """A code set whose `_codes` map each code to its entry."""

    _codes: dict[str, Entry]

    def get(self, code: str) -> Entry | None:
        return self._codes.get(self.normalize(code))

    def entries(self) -> Iterator[Entry]:
        return iter(self._codes.values())
