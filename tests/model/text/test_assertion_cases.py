"""Assertion accuracy over the project's labelled sentences (tests/model/text/assertion_cases.jsonl).

Each case is a short clinical sentence, a target phrase and the assertion flags it must carry. Accuracy is
the share of cases where the target is found and all five flags match; it must be at least 95%.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from medcode.model.text import TextPipeline

FLAGS = ("negated", "possible", "historical", "family", "hypothetical")
MIN_ACCURACY = 0.95
PHENOMENA = {
    "affirmed",
    "pre_negation",
    "list_negation",
    "termination",
    "post_negation",
    "negative_for",
    "possible",
    "versus",
    "family",
    "historical",
    "hypothetical",
    "section",
    "pseudo",
    "scope_end",
}


def judge(pipeline: TextPipeline, case: dict[str, Any]) -> str | None:
    """None when the case passes, else a line saying what went wrong."""
    found = [m for m in pipeline.extract(case["text"]) if m.text.lower() == case["target"].lower()]
    if len(found) < case.get("occurrence", 1):
        texts = [m.text for m in pipeline.extract(case["text"])]
        return f"{case['id']}: target {case['target']!r} not found in {case['text']!r} (mentions: {texts})"
    mention = found[case.get("occurrence", 1) - 1]
    got = sorted(flag for flag in FLAGS if getattr(mention.assertion, flag))
    if got != sorted(case["expected"]):
        return (
            f"{case['id']} [{case['phenomenon']}] {case['text']!r} / {case['target']!r}: "
            f"expected {sorted(case['expected'])}, got {got}"
        )
    return None


def test_assertion_accuracy_is_at_least_95_percent(
    small_pipeline: TextPipeline, cases: list[dict[str, Any]]
) -> None:
    failures = [line for line in (judge(small_pipeline, c) for c in cases) if line]
    accuracy = 1 - len(failures) / len(cases)
    print(f"assertion accuracy: {accuracy:.3f} ({len(cases) - len(failures)}/{len(cases)})")
    for line in failures:
        print("FAILED", line)
    assert accuracy >= MIN_ACCURACY, "\n".join([f"accuracy {accuracy:.3f} < {MIN_ACCURACY}", *failures])


def test_cases_are_many_and_cover_every_phenomenon(cases: list[dict[str, Any]]) -> None:
    assert len(cases) >= 150
    assert {c["phenomenon"] for c in cases} >= PHENOMENA
    counts = Counter(c["phenomenon"] for c in cases)
    assert min(counts[p] for p in PHENOMENA) >= 5


def test_cases_are_varied_not_one_template(cases: list[dict[str, Any]]) -> None:
    texts = {c["text"] for c in cases}
    first_words = {c["text"].split()[0].lower() for c in cases}
    targets = {c["target"].lower() for c in cases}
    assert len(texts) >= 0.8 * len(cases)
    assert len(first_words) >= 60
    assert len(targets) >= 120


def test_case_ids_are_unique_and_flags_known(cases: list[dict[str, Any]]) -> None:
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids))
    for case in cases:
        assert set(case["expected"]) <= set(FLAGS), case["id"]
        assert case["target"].lower() in case["text"].lower(), case["id"]


def test_a_wrong_expectation_is_reported(small_pipeline: TextPipeline) -> None:
    case = {"id": "x", "phenomenon": "pre_negation", "text": "No fever.", "target": "fever", "expected": []}
    assert judge(small_pipeline, case) is not None
