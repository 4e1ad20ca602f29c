"""The codes of one review item as its decisions leave them (a pure function of result + decisions).

The item starts with the model's suggested codes (status `pending`); decisions apply in the order they
were stored, and the latest decision on a code wins:

- accept CODE: the code is kept; reject CODE (with a reason): dropped, an explicit negative;
- replace CODE with NEW: CODE is dropped (`replaced`), NEW is kept and inherits CODE's evidence;
- add CODE with evidence: a code the model did not suggest, kept.

A decision naming a code that is not in the item (or adding one that is) is a conflict. Each code counts
the decisions that touched it (`rev`): a client that sends back the `rev` it saw gets a conflict when
another tab or coder decided the code meanwhile. Finalizing keeps every code whose status is pending,
accepted or added; the finalize checks (`review_checks`) refuse pending codes unless accepted explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from medcode.data.types import Evidence, Result
from medcode.serving.orm import DecisionRow
from medcode.serving.services.codes import normalize_key

Origin = Literal["model", "added", "replacement"]
KEPT = frozenset({"pending", "accepted", "added"})


class DecisionConflict(Exception):
    """A decision that does not fit the item's codes (HTTP 409)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StoredDecision:
    """A decision as stored (codes canonical, evidence validated)."""

    action: str
    system: str
    code: str
    replacement: str | None = None
    replacement_system: str | None = None
    reason: str | None = None
    evidence: tuple[Evidence, ...] = ()
    title: str = ""
    """Title of the added or replacement code."""
    actor: str = ""


@dataclass
class CodeState:
    system: str
    code: str
    description: str
    confidence: float | None
    evidence: list[Evidence]
    origin: Origin
    status: str = "pending"
    rationale: str = ""
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None
    replaced_by: str | None = None
    decided_by: str | None = None
    rev: int = 0
    """How many decisions touched this code (0: none yet)."""

    @property
    def kept(self) -> bool:
        return self.status in KEPT


class ItemState:
    def __init__(self, result: Result) -> None:
        self._codes: dict[tuple[str, str], CodeState] = {}
        for suggestion in result.codes:
            self._codes[(suggestion.system, normalize_key(suggestion.code))] = CodeState(
                system=suggestion.system,
                code=suggestion.code,
                description=suggestion.description,
                confidence=suggestion.confidence,
                evidence=list(suggestion.evidence),
                origin="model",
                rationale=suggestion.rationale,
                warnings=list(suggestion.warnings),
            )

    @classmethod
    def replay(cls, result: Result, decisions: list[StoredDecision]) -> ItemState:
        state = cls(result)
        for decision in decisions:
            state.apply(decision)
        return state

    @property
    def codes(self) -> list[CodeState]:
        return list(self._codes.values())

    def find(self, code: str, system: str | None = None) -> CodeState | None:
        key = normalize_key(code)
        if system is not None:
            return self._codes.get((system, key))
        for (_, code_key), state in self._codes.items():
            if code_key == key:
                return state
        return None

    def apply(self, decision: StoredDecision) -> None:
        current = self.find(decision.code, decision.system)
        if decision.action == "add":
            if current is not None:
                raise DecisionConflict(
                    f"{decision.code} is already in the item ({current.status}); accept it instead",
                    "code_already_in_item",
                )
            self._put_new(decision, decision.system, decision.code, decision.evidence, "added")
            return
        if current is None:
            raise DecisionConflict(f"{decision.code} is not a code of this item", "code_not_in_item")
        current.decided_by = decision.actor
        current.rev += 1
        if decision.action == "accept":
            current.status, current.reason, current.replaced_by = "accepted", None, None
        elif decision.action == "reject":
            current.status, current.reason, current.replaced_by = "rejected", decision.reason, None
        elif decision.action == "replace":
            assert decision.replacement is not None and decision.replacement_system is not None
            current.status, current.reason = "replaced", decision.reason
            current.replaced_by = decision.replacement
            target = self.find(decision.replacement, decision.replacement_system)
            if target is not None:
                target.status, target.reason, target.replaced_by = "accepted", None, None
                target.decided_by = decision.actor
                target.rev += 1
            else:
                self._put_new(
                    decision,
                    decision.replacement_system,
                    decision.replacement,
                    current.evidence,
                    "replacement",
                )
        else:
            raise ValueError(f"unknown action {decision.action!r}")

    def final_codes(self) -> list[CodeState]:
        return [state for state in self._codes.values() if state.kept]

    def negatives(self) -> list[CodeState]:
        return [state for state in self._codes.values() if state.status in ("rejected", "replaced")]

    def _put_new(
        self, decision: StoredDecision, system: str, code: str, evidence: Sequence[Evidence], origin: Origin
    ) -> None:
        """A code the decision brings into the item (added, or the target of a replacement): kept, no score."""
        status = "added" if origin == "added" else "accepted"
        state = CodeState(
            system,
            code,
            decision.title,
            None,
            list(evidence),
            origin,
            status=status,
            decided_by=decision.actor,
            rev=1,
        )
        self._codes[(system, normalize_key(code))] = state


DIAGNOSIS_SYSTEMS = frozenset({"ICD-10-CM"})
"""Code systems whose codes are diagnoses; every other system's codes are procedures."""


def sequence_key(system: str, code: str) -> str:
    """A code's key in an item's sequence: "SYSTEM|CODE" with the code in its canonical form."""
    return f"{system}|{normalize_key(code)}"


def sequenced(codes: list[CodeState], sequence: list[str] | None) -> list[CodeState]:
    """Diagnoses first, then procedures; within each group the coder's sequence, then codes it does not
    name in their own order. The first diagnosis is the principal one."""
    rank = {key: i for i, key in enumerate(sequence or [])}
    unranked = len(rank)

    def order(pair: tuple[int, CodeState]) -> tuple[int, int, int]:
        index, state = pair
        group = 0 if state.system in DIAGNOSIS_SYSTEMS else 1
        return group, rank.get(sequence_key(state.system, state.code), unranked), index

    return [state for _, state in sorted(enumerate(codes), key=order)]


def decision_rows(session: Session, item_id: int) -> list[DecisionRow]:
    """An item's stored decision rows, oldest first."""
    return list(
        session.scalars(select(DecisionRow).where(DecisionRow.item_id == item_id).order_by(DecisionRow.id))
    )


def decision_fields(decision: StoredDecision) -> dict[str, Any]:
    """The columns a decision row stores of the decision (the inverse of `stored_decision`, ids aside)."""
    return {
        "action": decision.action,
        "system": decision.system,
        "code": decision.code,
        "replacement": decision.replacement,
        "replacement_system": decision.replacement_system,
        "reason": decision.reason,
        "evidence": [e.model_dump(mode="json") for e in decision.evidence],
    }


def stored_decision(row: DecisionRow, titles: dict[str, str] | None = None) -> StoredDecision:
    """A stored decision row as the replay reads it (`titles`: added codes' titles looked up again)."""
    title_key = row.replacement if row.action == "replace" else row.code
    return StoredDecision(
        action=row.action,
        system=row.system,
        code=row.code,
        replacement=row.replacement,
        replacement_system=row.replacement_system,
        reason=row.reason,
        evidence=tuple(Evidence.model_validate(e) for e in row.evidence),
        title=(titles or {}).get(title_key or "", ""),
        actor=row.actor,
    )
