"""Measure the rules step: its size (rules, data entries) and its speed per encounter.

    python -m model.rules.benchmark --data-dir ../shared/datasets/codiesp --split dev

Feeds each encounter's gold ICD-10-CM codes to the step as if a ranker had suggested them (no mentions,
so the evidence-based rules stay quiet), times the step, and counts firings and the audit (Excludes1
pairs, non-billable codes, missing 7th characters) before and after. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from medcode.data.types import CodeSuggestion, Encounter
from medcode.model.rules.audit import audit_codes
from medcode.model.rules.combinations import load_combinations
from medcode.model.rules.history import load_entries
from medcode.model.rules.pipeline import CodingRules
from medcode.model.rules.resources import load_resource


def rule_inventory(rules: CodingRules) -> dict[str, Any]:
    edits = load_resource("age_sex_edits.json")
    icd = rules.tabular.icd
    excl = sum(1 for e in icd.entries() if e.excludes1)
    return {
        "rules": rules.rule_names,
        "rule_count": len(rules.rule_names),
        "combination_patterns": len(load_combinations()),
        "sex_edits": len(edits["sex_edits"]),
        "age_edits": len(edits["age_edits"]),
        "history_of_entries": len(load_entries()),
        "tabular_codes_with_excludes1": excl,
        "tabular_codes_with_code_first": sum(1 for e in icd.entries() if e.code_first),
        "tabular_codes_with_use_additional": sum(1 for e in icd.entries() if e.use_additional),
        "tabular_codes_with_7th_characters": sum(
            1 for e in icd.entries() if e.seventh_chars and not e.seventh_char
        ),
    }


def run(encounters: list[Encounter], rules: CodingRules) -> dict[str, Any]:
    times: list[float] = []
    firings: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    for encounter in encounters:
        gold = encounter.gold.diagnosis if encounter.gold else []
        codes = [
            CodeSuggestion(code=rules.tabular.icd.normalize(c), confidence=0.9 - i * 0.01)
            for i, c in enumerate(dict.fromkeys(gold))
        ]
        before.update(audit_codes([c.code for c in codes], rules.tabular).counts())
        started = time.perf_counter()
        outcome = rules(encounter, [], codes, [])
        times.append(time.perf_counter() - started)
        after.update(
            audit_codes([c.code for c in outcome.codes if c.system == "ICD-10-CM"], rules.tabular).counts()
        )
        firings.update(f.rule for f in outcome.firings)
        reasons.update(r.split(":")[0] for r in outcome.reasons)
    ordered = sorted(times)
    return {
        "encounters": len(encounters),
        "ms_per_encounter_mean": round(1000 * statistics.fmean(times), 2) if times else None,
        "ms_per_encounter_p95": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2) if times else None,
        "ms_per_encounter_max": round(1000 * ordered[-1], 2) if times else None,
        "firings_by_rule": dict(firings.most_common()),
        "reasons_by_kind": dict(reasons.most_common()),
        "audit_gold_as_input": dict(before),
        "audit_after_rules": dict(after),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the CodiEsp folder")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    from medcode.data.corpora import load_corpus

    started = time.perf_counter()
    rules = CodingRules(use_settings=False)
    build_s = time.perf_counter() - started
    encounters = load_corpus("codiesp", args.data_dir, args.split)[: args.limit]
    report = {"build_s": round(build_s, 2), **rule_inventory(rules), **run(encounters, rules)}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
