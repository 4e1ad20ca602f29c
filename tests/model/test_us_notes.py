"""A behavioural suite of short US-style notes (us_notes.jsonl): HPI / A&P shorthand, medication lists,
family and personal history, status Z codes, injuries by encounter, sequelae, pregnancy and outpatient
uncertain diagnoses, each with the codes a certified coder assigns (must) and the codes a coder would
never let through (must-not), all verified billable in the packaged FY2026 tabular.

Safety is asserted hard: no model suggests a must-not code. Recall of must codes is measured and printed
by category; the categories that no rule builds yet are listed in `NOT_BUILT` and reported as expected
failures, so the gap stays visible in every run (run with -rxX -s to see the report).
"""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from medcode.data.types import Document, Encounter, Patient, Result

CASES_FILE = Path(__file__).with_name("us_notes.jsonl")

BUILTIN_MUST_RECALL = 0.80
"""The built-in model's floor over the whole suite (the issue's done-when; measured 0.89 on 123 notes without
a data folder, see benchmarks/us_coding.md)."""

BUILTIN_BUILT_RECALL = 0.85
"""The floor on the categories the rules build, less those needing the index (measured 0.94)."""

NOT_BUILT: frozenset[str] = frozenset()
"""Categories whose must codes need what is not built yet (reported as an expected failure)."""

NEEDS_INDEX = frozenset({"injury_7th"})
"""Categories coded from the ICD-10-CM Alphabetic Index walk ("R distal radius fx" -> Fracture, traumatic /
radius / lower end -> S52.501 + the encounter's 7th character). The built-in model made without a data
folder has no index (the packaged code set is the tabular only), so its figure there is reported, not
held to a floor; the models with the index (the built-in model from MEDCODE_DATA_DIR, a trained pack) are
held to INDEX_CATEGORY_RECALL."""

INDEX_CATEGORY_RECALL = 0.83
"""Floor on NEEDS_INDEX categories for the models with the index (10 of the 12 injury notes; measured 12/12
on both, benchmarks/us_coding.md)."""

KNOWN_VIOLATIONS: frozenset[str] = frozenset()
"""Must-not codes the built-in model is known to suggest (reported as an expected failure until fixed; any
other violation fails hard). Empty since the unspecified-organism code gives way to the named organism's
(J13 for "pneumococcal pneumonia") and a side letter ("L acute otitis media") documents the side."""


def load_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CASES_FILE.read_text().splitlines() if line.strip()]


def matches(pattern: str, code: str) -> bool:
    """Exact code, or a shell pattern: "E11*" any E11 code, "S52.5??D" a radius fracture, subsequent."""
    return fnmatchcase(code, pattern)


@dataclass
class UsOutcome:
    found: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    missed: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def recall(self, categories: frozenset[str] | None = None) -> float:
        keys = [k for k in self.total if categories is None or k in categories]
        total = sum(self.total[k] for k in keys)
        return sum(self.found[k] for k in keys) / total if total else 1.0

    def report(self) -> str:
        lines = [f"must recall {self.recall():.2f} ({sum(self.found.values())}/{sum(self.total.values())})"]
        for category in sorted(self.total):
            lines.append(f"  {category}: {self.found[category]}/{self.total[category]}")
        lines.append(f"must-not suggested: {self.violations}")
        lines.append(f"missed: {self.missed}")
        return "\n".join(lines)


def encounter_of(case: dict[str, Any]) -> Encounter:
    return Encounter(
        encounter_id=case["id"],
        patient=Patient(age=case.get("age"), sex=case.get("sex")),
        setting=case.get("setting", "outpatient"),
        documents=[Document(document_id="d1", text=case["text"])],
    )


def check(case: dict[str, Any], result: Result, outcome: UsOutcome) -> None:
    suggested = [c.code for c in result.codes]
    category = case["category"]
    for pattern in case["must"]:
        outcome.total[category] += 1
        if any(matches(pattern, code) for code in suggested):
            outcome.found[category] += 1
        else:
            outcome.missed.append(f"{case['id']}:{pattern} (got {suggested})")
    for pattern in case["must_not"]:
        outcome.violations.extend(f"{case['id']}:{c}" for c in suggested if matches(pattern, c))


def run_suite(coder: Any, cases: list[dict[str, Any]] | None = None) -> UsOutcome:
    outcome = UsOutcome()
    for case in cases if cases is not None else load_cases():
        check(case, coder.suggest(encounter_of(case)), outcome)
    return outcome


# --- the suite itself ------------------------------------------------------------------------------------


def test_suite_covers_every_category_with_unique_notes() -> None:
    cases = load_cases()
    assert len(cases) >= 100
    assert len({c["id"] for c in cases}) == len(cases)
    assert len({c["text"] for c in cases}) == len(cases)
    assert {
        "status_drug",
        "family_history",
        "personal_history",
        "absence",
        "device",
        "screening",
        "vaccination",
        "injury_7th",
        "sequela",
        "pregnancy",
        "uncertain",
        "safety",
        "status",
        "aftercare",
        "specificity",
        "em",
    } <= {c["category"] for c in cases}
    assert {c["setting"] for c in cases} >= {"outpatient", "inpatient", "emergency"}


def test_every_listed_code_is_billable_in_the_tabular() -> None:
    """ICD-10-CM codes billable in the packaged FY2026 tabular; CPT codes (E/M) in the office-visit set."""
    from medcode.data.cpt import load_em_office_visits
    from medcode.data.icd10cm import load_icd10cm

    icd = load_icd10cm()
    em_codes = {v.code for v in load_em_office_visits()}
    for case in load_cases():
        for code in [*case["must"], *case["must_not"]]:
            if "*" in code or "?" in code:
                continue
            if code.isdigit():
                assert code in em_codes, f"{case['id']}: {code}"
                continue
            entry = icd.get(code)
            assert entry is not None and entry.billable, f"{case['id']}: {code}"


def test_no_two_must_codes_of_a_note_are_excludes1_pairs() -> None:
    from medcode.data.icd10cm import load_icd10cm
    from medcode.model.rules import RuleTabular, excludes1_conflict

    tabular = RuleTabular(load_icd10cm())
    for case in load_cases():
        exact = [c for c in case["must"] if not c.isdigit() and "*" not in c and "?" not in c]
        for a, b in itertools.combinations(exact, 2):
            assert not excludes1_conflict(tabular, a, b), f"{case['id']}: {a} Excludes1 {b}"
        for must, must_not in itertools.product(exact, case["must_not"]):
            assert not matches(must_not, must), f"{case['id']}: {must} is also a must-not"


def test_matcher_reads_patterns() -> None:
    assert matches("S52.5??D", "S52.501D")
    assert not matches("S52.5??D", "S52.501A")
    assert matches("E11*", "E11.9")
    assert not matches("Z79.4", "Z79.41")


# --- the built-in model ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin_outcome() -> UsOutcome:
    from medcode.model.builtin import BuiltinCoder

    outcome = run_suite(BuiltinCoder())
    print("\nbuilt-in model on us_notes.jsonl\n" + outcome.report())
    return outcome


def test_builtin_suggests_no_new_must_not_code(builtin_outcome: UsOutcome) -> None:
    assert set(builtin_outcome.violations) <= KNOWN_VIOLATIONS, builtin_outcome.report()


def test_builtin_suggests_no_must_not_code(builtin_outcome: UsOutcome) -> None:
    if builtin_outcome.violations:
        pytest.xfail("known must-not codes suggested: " + ", ".join(builtin_outcome.violations))


def test_builtin_must_recall_over_the_suite(builtin_outcome: UsOutcome) -> None:
    assert builtin_outcome.recall() >= BUILTIN_MUST_RECALL, builtin_outcome.report()


def test_builtin_must_recall_on_built_categories(builtin_outcome: UsOutcome) -> None:
    built = frozenset(builtin_outcome.total) - NOT_BUILT - NEEDS_INDEX
    assert builtin_outcome.recall(built) >= BUILTIN_BUILT_RECALL, builtin_outcome.report()


def test_builtin_must_recall_on_categories_not_built(builtin_outcome: UsOutcome) -> None:
    if builtin_outcome.recall(NOT_BUILT) < 1.0:
        pytest.xfail("not built yet: " + ", ".join(sorted(NOT_BUILT)) + "\n" + builtin_outcome.report())


def test_builtin_without_index_on_index_categories(builtin_outcome: UsOutcome) -> None:
    if builtin_outcome.recall(NEEDS_INDEX) < INDEX_CATEGORY_RECALL:
        pytest.xfail("no Alphabetic Index without a data folder: " + ", ".join(sorted(NEEDS_INDEX)))


# --- models built from outside the repository: the datasets, a trained pack -------------------------------


@dataclass(frozen=True)
class ExternalModel:
    """A model the suite runs only where its source is given, with the issue's floor for it."""

    name: str
    variable: str
    """The environment variable naming the folder it is built from."""
    floor: float


EXTERNAL_MODELS = [
    # the built-in model as the service builds it from MEDCODE_DATA_DIR (Alphabetic Index walk on; 0.97 measured)
    ExternalModel("builtin-with-data", "MEDCODE_DATA_DIR", 0.85),
    # a trained pack, e.g. the trained default (the floor)
    ExternalModel("pack", "MEDCODE_TEST_PACK", 0.90),
]


def build_external(model: ExternalModel, folder: Path, cache: Path) -> Any:
    if model.name == "pack":
        from medcode.model.pack import load_pack

        return load_pack(folder)
    from medcode.model.builtin import BuiltinCoder

    return BuiltinCoder(data_dir=folder, cache_dir=cache)


@pytest.fixture(scope="module", params=EXTERNAL_MODELS, ids=lambda model: model.name)
def external(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[UsOutcome, float]:
    model: ExternalModel = request.param
    folder = os.environ.get(model.variable)
    if not folder or not Path(folder).is_dir():
        pytest.skip(f"set {model.variable} to run the suite on the {model.name} model")
    outcome = run_suite(build_external(model, Path(folder), tmp_path_factory.mktemp("cache")))
    print(f"\n{model.name} ({folder}) on us_notes.jsonl\n" + outcome.report())
    return outcome, model.floor


@pytest.mark.slow
@pytest.mark.shared
def test_external_model_suggests_no_must_not_code(external: tuple[UsOutcome, float]) -> None:
    outcome, _floor = external
    assert not outcome.violations, outcome.report()


@pytest.mark.slow
@pytest.mark.shared
def test_external_model_must_recall(external: tuple[UsOutcome, float]) -> None:
    outcome, floor = external
    assert outcome.recall() >= floor, outcome.report()


@pytest.mark.slow
@pytest.mark.shared
def test_external_model_must_recall_on_index_categories(external: tuple[UsOutcome, float]) -> None:
    outcome, _floor = external
    assert outcome.recall(NEEDS_INDEX) >= INDEX_CATEGORY_RECALL, outcome.report()
