"""The behavioural suite of the coding rules: short notes with the ranker's codes and candidates, the
codes that must and must not result, and the routing reasons expected (rules_cases.jsonl).

Each line: id, rule, note, optional patient/setting/date, mentions (phrase + assertion flags, attributes,
concepts), codes and candidates ({code, confidence, evidence phrases, system}), and expectations:
must / must_not (final codes), must_not_prefix (no final code starts with these), candidates_include,
order (sequence of final codes), reasons (each must appear), reasons_absent (none may start with these),
no_reasons, warnings ({code: [flags]}), ncci_rows (a CMS-style PTP table the case writes to a file). A
phrase 'text#2' means its second occurrence.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medcode.model.rules import RulesOutcome

CASES_FILE = Path(__file__).with_name("rules_cases.jsonl")
CASES: list[dict[str, Any]] = [
    json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()
]


def test_suite_has_at_least_sixty_cases_covering_every_rule() -> None:
    assert len(CASES) >= 60
    assert len({c["id"] for c in CASES}) == len(CASES)
    covered = {c["rule"] for c in CASES}
    expected = {
        "assertion",
        "code_set",
        "history_of",
        "laterality",
        "unspecified",
        "specificity",
        "seventh_character",
        "excludes1",
        "code_first",
        "use_additional",
        "combination",
        "age_sex",
        "em_level",
        "ncci",
    }
    assert expected <= covered


def _check(case: dict[str, Any], outcome: RulesOutcome) -> list[str]:
    final = [c.code for c in outcome.codes]
    candidates = [c.code for c in outcome.candidates]
    problems = []
    for code in case.get("must", []):
        if code not in final:
            problems.append(f"{code} should be final")
    for code in case.get("must_not", []):
        if code in final:
            problems.append(f"{code} should not be final")
    for prefix in case.get("must_not_prefix", []):
        if any(c.startswith(prefix) for c in final):
            problems.append(f"no final code should start {prefix}")
    for code in case.get("candidates_include", []):
        if code not in candidates:
            problems.append(f"{code} should be among the candidates")
    order = case.get("order", [])
    positions = [final.index(c) for c in order if c in final]
    if positions != sorted(positions) or len(positions) != len(order):
        problems.append(f"final codes should be sequenced {order}")
    for reason in case.get("reasons", []):
        if reason not in outcome.reasons:
            problems.append(f"reason {reason} expected")
    for prefix in case.get("reasons_absent", []):
        if any(r.startswith(prefix) for r in outcome.reasons):
            problems.append(f"no reason starting {prefix} expected")
    if case.get("no_reasons") and outcome.reasons:
        problems.append("no routing reason expected")
    by_code = {c.code: c for c in [*outcome.candidates, *outcome.codes]}
    for code, flags in case.get("warnings", {}).items():
        for flag in flags:
            if code not in by_code or flag not in by_code[code].warnings:
                problems.append(f"{code} should carry warning {flag}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_rules_case(case: dict[str, Any], run_case: Callable[[dict[str, Any]], RulesOutcome]) -> None:
    outcome = run_case(case)
    problems = _check(case, outcome)
    final = [(c.code, round(c.confidence, 3), c.warnings) for c in outcome.codes]
    assert not problems, (
        f"{problems}\nfinal={final}\ncandidates={[c.code for c in outcome.candidates]}\nreasons={outcome.reasons}"
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_rules_case_output_is_clean_and_loses_nothing(
    case: dict[str, Any], run_case: Callable[[dict[str, Any]], RulesOutcome]
) -> None:
    """Whatever fires: every input code is still in codes or candidates, and every firing is recorded."""
    outcome = run_case(case)
    kept = {c.code for c in [*outcome.codes, *outcome.candidates]}
    for spec in [*case.get("codes", []), *case.get("candidates", [])]:
        assert spec["code"] in kept
    for firing in outcome.firings:
        assert firing.rule and firing.message
        if firing.reason:
            assert firing.reason in outcome.reasons


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_rules_case_keeps_the_rankers_confidences(
    case: dict[str, Any], run_case: Callable[[dict[str, Any]], RulesOutcome]
) -> None:
    """The rules choose codes, they do not re-rank: a code the ranker scored keeps the ranker's confidence
    wherever it ends up (so MAP over the ranked list is not lowered by the rules), except the variant a
    documented side puts in place of a wrong-side code."""
    outcome = run_case(case)
    ranker = {s["code"]: s["confidence"] for s in [*case.get("codes", []), *case.get("candidates", [])]}
    for suggestion in [*outcome.codes, *outcome.candidates]:
        if suggestion.code in ranker and not any(w.startswith("laterality:") for w in suggestion.warnings):
            assert suggestion.confidence == ranker[suggestion.code], suggestion.code
