"""The interface every coding model offers, whatever its preset."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from medcode.data.types import Encounter, Result


@runtime_checkable
class Coder(Protocol):
    """A loaded model: one encounter in, one result out (codes, candidates, routing)."""

    @property
    def version(self) -> str: ...

    @property
    def code_set_version(self) -> str: ...

    def suggest(self, encounter: Encounter) -> Result: ...
