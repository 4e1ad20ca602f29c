"""Checks on a final code list that the evaluation counts: Excludes1 pairs, non-billable codes, codes
missing their required 7th character (pure functions over ICD-10-CM codes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from medcode.model.rules.excludes import excludes1_conflict
from medcode.model.rules.tabular import RuleTabular


@dataclass
class CodeSetAudit:
    excludes1_pairs: list[tuple[str, str]] = field(default_factory=list)
    non_billable: list[str] = field(default_factory=list)
    """Codes the release does not hold as billable (headers, unknown codes), 7th-character cases aside."""
    missing_seventh: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.excludes1_pairs or self.non_billable or self.missing_seventh)

    def counts(self) -> dict[str, int]:
        return {
            "excludes1_pairs": len(self.excludes1_pairs),
            "non_billable": len(self.non_billable),
            "missing_7th_character": len(self.missing_seventh),
        }


def audit_codes(codes: Iterable[str], tabular: RuleTabular) -> CodeSetAudit:
    """Audit one encounter's final ICD-10-CM codes."""
    audit = CodeSetAudit()
    unique = list(dict.fromkeys(codes))
    for code in unique:
        entry = tabular.entry(code)
        if entry is not None and tabular.needs_seventh(entry):
            audit.missing_seventh.append(code)
        elif entry is None or not entry.billable or tabular.icd.get(code) is None:
            audit.non_billable.append(code)
    for i, first in enumerate(unique):
        for second in unique[i + 1 :]:
            if tabular.entry(first) and tabular.entry(second) and excludes1_conflict(tabular, first, second):
                audit.excludes1_pairs.append((first, second))
    return audit
