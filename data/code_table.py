"""A code set held in memory as normalised code -> entry, with the lookups every such set offers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Generic, TypeVar

from medcode.data.errors import UnknownCodeError

Entry = TypeVar("Entry")


class CodeTable(Generic[Entry]):
    """Mapping-like lookups over `_codes` (keys already normalised); a subclass names the set and its form."""

    name: ClassVar[str]
    _codes: dict[str, Entry]

    @staticmethod
    def normalize(code: str) -> str:
        raise NotImplementedError

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
