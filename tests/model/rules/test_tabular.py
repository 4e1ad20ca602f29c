"""What the rules read from the packaged ICD-10-CM tabular."""

from __future__ import annotations

from medcode.data.icd10cm import ICD10CM
from medcode.model.rules.excludes import excludes1_conflict
from medcode.model.rules.seventh import with_seventh
from medcode.model.rules.tabular import RuleTabular


def test_headers_and_seventh_character_codes(icd: ICD10CM) -> None:
    tabular = RuleTabular(icd)
    assert tabular.is_header(icd["N18.3"])
    assert not tabular.is_header(icd["N18.30"])
    assert tabular.needs_seventh(icd["S52.521"])
    assert not tabular.is_header(icd["S52.521"])
    assert tabular.is_header(icd["E11.32"])  # its children still need a 7th character
    assert tabular.targets("S52.52") == ("S52.521", "S52.522", "S52.529")
    assert tabular.entry("S01.00X") is icd["S01.00"]


def test_seventh_character_placeholder() -> None:
    assert with_seventh("S52.521", "A") == "S52.521A"
    assert with_seventh("S01.00", "A") == "S01.00XA"
    assert with_seventh("T81.4", "D") == "T81.4XXD"


def test_instruction_groups_know_mandatory_from_optional(icd: ICD10CM) -> None:
    tabular = RuleTabular(icd)
    e1122 = tabular.note_groups("E11.22", "use_additional")
    assert any(g.mandatory and any(p.matches("N18.32") for p in g.patterns) for g in e1122)
    insulin = [g for g in e1122 if any(p.matches("Z79.4") for p in g.patterns)]
    assert insulin and not any(g.mandatory for g in insulin)
    assert all(g.mandatory for g in tabular.note_groups("G63", "code_first"))
    assert not any(g.mandatory for g in tabular.note_groups("N18.4", "code_first"))
    i130 = [g for g in tabular.note_groups("I13.0", "use_additional") if g.mandatory]
    assert len(i130) == 2  # type of heart failure, stage of CKD


def test_excludes1_relation_is_hierarchical_and_symmetric(icd: ICD10CM) -> None:
    tabular = RuleTabular(icd)
    assert excludes1_conflict(tabular, "E10.9", "E11.65")
    assert excludes1_conflict(tabular, "E11.65", "E10.9")
    assert excludes1_conflict(tabular, "G63", "E11.42")
    assert not excludes1_conflict(tabular, "G63", "E11.9")
    assert not excludes1_conflict(tabular, "E11.9", "I10")
    assert not excludes1_conflict(tabular, "E11", "E11.9")


def test_expand_pattern_lists_billable_codes(icd: ICD10CM) -> None:
    tabular = RuleTabular(icd)
    from medcode.model.rules.refs import parse_patterns

    (pattern,) = parse_patterns("(N18.1-N18.6)")
    assert tabular.expand(pattern) == [
        "N18.1",
        "N18.2",
        "N18.30",
        "N18.31",
        "N18.32",
        "N18.4",
        "N18.5",
        "N18.6",
    ]
    (wide,) = parse_patterns("(C00-D49)")
    assert tabular.expand(wide, limit=50) == []
