"""Late effects of cerebrovascular disease (Guidelines I.C.9.d): an old stroke with a residual deficit is
coded I69.- with the residual, not the acute I60-I63 code and not Z86.73.

The tables are data (resources/sequelae.json): the old condition's code prefixes and the I69 subcategory
they lead to, the phrases that make a mention old ("prior", "late effect of", a past year), those that
deny a residual, and the side / handedness phrases with the guideline's dominance defaults. The residual's
code is found in the tabular, never listed per code: the billable child of the subcategory whose title,
less the subcategory's own words and the side words, names a word of the clause ("Dysphagia following
cerebral infarction" for "dysphagia as late effect of stroke"). Among children naming the residual, the
side and dominance the clause documents choose; with no side, the child without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from medcode.data.types import Evidence, Mention
from medcode.model.rules.context import around
from medcode.model.rules.excludes import excludes1_conflict
from medcode.model.rules.refs import compact
from medcode.model.rules.resources import load_resource
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.terms import content_words, title_terms

RESOURCE = "sequelae.json"


@dataclass(frozen=True)
class SequelaCondition:
    prefixes: tuple[str, ...]
    category: str


def _compile(items: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in items)


class SequelaRule:
    name = "sequela"

    def __init__(self, data: dict[str, Any] | None = None, confidence: float = 0.8) -> None:
        data = data if data is not None else load_resource(RESOURCE)
        self.section = str(data["section"])
        self.conditions = tuple(
            SequelaCondition(tuple(compact(c) for c in e["codes"]), e["category"]) for e in data["conditions"]
        )
        self.old = _compile(data["old"])
        self.no_residual = _compile(data["no_residual"])
        self.ignore = frozenset(data["ignore_title_words"])
        self.sides = {k: _compile(v) for k, v in data["sides"].items()}
        self.handedness = {k: _compile(v) for k, v in data["handedness"].items()}
        self.default_dominance = dict(data["default_dominance"])
        self.confidence = confidence

    def __call__(self, state: RulesState) -> None:
        for mention in state.context.present:
            condition = self._condition(mention)
            if condition is None:
                continue
            clause, start = self._clause(state, mention)
            if clause is None:
                continue
            own = clause[mention.start - start : mention.end - start]
            rest = clause[: mention.start - start] + " " + clause[mention.end - start :]
            old = mention.assertion.historical or mention.attributes.get("episode") == "sequela"
            if not (old or any(p.search(rest) for p in self.old)):
                continue
            if any(p.search(clause) for p in self.no_residual):
                continue
            code = self._residual_code(state, condition.category, rest.replace(own, " "))
            if code is None:
                continue
            self._code(state, mention, code, clause, start)

    def _condition(self, mention: Mention) -> SequelaCondition | None:
        for concept in mention.concepts:
            key = compact(concept)
            for condition in self.conditions:
                if key.startswith(condition.prefixes):
                    return condition
        return None

    @staticmethod
    def _clause(state: RulesState, mention: Mention) -> tuple[str | None, int]:
        text = state.document_text(mention.document_id)
        if text is None:
            return None, 0
        start, end = around(text, mention.start, mention.end)
        return text[start:end], start

    def _residual_code(self, state: RulesState, category: str, clause: str) -> str | None:
        """The child of `category` naming the residual the clause documents, with its side."""
        tabular = state.tabular
        given = title_terms(tabular.title(category)).required
        words = content_words(clause)
        best: list[tuple[int, str]] = []
        for code in tabular.targets(category):
            residual = title_terms(tabular.title(code)).required - given - self.ignore
            hits = len(residual & words)
            if hits:
                best.append((hits, code))
        if not best:
            return None
        top = max(h for h, _ in best)
        group = [c for h, c in best if h == top]
        return self._side(state, group, clause)

    def _side(self, state: RulesState, group: list[str], clause: str) -> str | None:
        sided = {c: title_terms(state.tabular.title(c)).required for c in group}
        if not any({"right", "left"} & w for w in sided.values()):
            return group[0] if len(group) == 1 else None
        sides = [s for s, patterns in self.sides.items() if any(p.search(clause) for p in patterns)]
        if len(sides) != 1:
            unsided = [c for c, w in sided.items() if not {"right", "left"} & w]
            return unsided[0] if len(unsided) == 1 else None
        side = sides[0]
        text = state.context.text
        hand = next((h for h, ps in self.handedness.items() if any(p.search(text) for p in ps)), None)
        if hand in ("right", "left"):
            dominance = "dominant" if hand == side else "nondominant"
        elif hand == "ambidextrous":
            dominance = self.default_dominance["ambidextrous"]
        else:
            dominance = self.default_dominance[side]
        for code, words in sided.items():
            if (
                side in words
                and dominance in words
                and (dominance == "nondominant" or "nondominant" not in words)
            ):
                return code
        return None

    def _code(self, state: RulesState, mention: Mention, code: str, clause: str, start: int) -> None:
        entry = state.tabular.entry(code)
        if entry is None or not entry.billable:
            return
        evidence = Evidence(
            document_id=mention.document_id, start=start, end=start + len(clause), text=clause
        )
        moved = []
        for other in list(state.diagnoses()):
            key = compact(other.code)
            acute = any(key.startswith(c.prefixes) for c in self.conditions)
            on_mention = any(
                e.document_id == mention.document_id and e.start < mention.end and mention.start < e.end
                for e in other.evidence
            )
            in_clause = any(
                e.document_id == mention.document_id and e.start < evidence.end and evidence.start < e.end
                for e in other.evidence
            )
            residual = in_clause and excludes1_conflict(state.tabular, other.code, entry.code)
            if (acute and on_mention) or key == "Z8673" or residual:
                state.move_out(other)
                moved.append(other)
        if state.final(entry.code) is None:
            added = state.add_final(
                derived(
                    entry.code,
                    entry.title,
                    self.confidence,
                    [evidence],
                    f"rule {self.name}: late effect with its residual (Guidelines {self.section})",
                )
            )
        else:
            added = state.final(entry.code)  # type: ignore[assignment]
        state.fire(
            self.name,
            [added, *moved],
            f'"{clause.strip()}" documents a residual of an old cerebrovascular event: {entry.code} '
            f"({entry.title}); the acute code, Z86.73 and a residual code it excludes are not coded (Guidelines {self.section})",
        )
