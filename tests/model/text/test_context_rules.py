"""The ConText rule file and the scope mechanics, tested on hand-set words (no lexicon needed)."""

from __future__ import annotations

import json

import pytest
import spacy

from medcode.model.text.context import DIRECTIONS, ConTextComponent, ContextRules, literal_tokens
from medcode.model.text.extensions import CATEGORY_TO_ASSERTION
from medcode.model.text.normalize import Normalization
from medcode.model.text.rules import END, NUM, YEAR, PhraseTrie, load_json_resource, resource_path


@pytest.fixture(scope="module")
def context() -> ConTextComponent:
    norm = Normalization.load()
    return ConTextComponent(ContextRules.load(spacy.blank("en").tokenizer, norm), norm)


_TOKENIZER = spacy.blank("en").tokenizer


def flags(context: ConTextComponent, sentence: str, target: str, kind: str = "condition") -> set[str]:
    words = [t.lower_ for t in _TOKENIZER(sentence)]
    target_words = [t.lower_ for t in _TOKENIZER(target)]
    for i in range(len(words)):
        if words[i : i + len(target_words)] == target_words:
            (found,) = context.assert_sentence(words, [(i, i + len(target_words), kind)])
            return {CATEGORY_TO_ASSERTION[c] for c in found}
    raise AssertionError(f"{target!r} not in {sentence!r}")


def test_rule_file_is_well_formed() -> None:
    data = json.loads(resource_path("context_rules.json").read_text(encoding="utf-8"))
    categories = set(CATEGORY_TO_ASSERTION)
    for group in data["rules"]:
        assert group["direction"] in DIRECTIONS
        assert set(group.get("categories", [])) <= categories
        assert set(group.get("terminates", [])) <= categories
        assert group["literals"], group
        if group["direction"] not in ("PSEUDO", "TERMINATE"):
            assert group["categories"], group
    assert set(data["cross_termination"]) == categories


def test_every_category_has_forward_and_backward_triggers() -> None:
    data = load_json_resource("context_rules.json")
    for category in CATEGORY_TO_ASSERTION:
        directions = {g["direction"] for g in data["rules"] if category in g.get("categories", [])}
        assert {"FORWARD", "BACKWARD"} <= directions or "BIDIRECTIONAL" in directions, category


def test_literals_keep_wildcards() -> None:
    tokenizer = spacy.blank("en").tokenizer
    norm = Normalization.load()
    assert literal_tokens(tokenizer, norm, ["<NUM> years ago", "in <YEAR>", ": no <END>", "r/o"]) == [
        [NUM, "years", "ago"],
        ["in", YEAR],
        [":", "no", END],
        ["r", "/", "o"],
    ]


def test_phrase_trie_prefers_the_longest_overlapping_phrase() -> None:
    trie: PhraseTrie[str] = PhraseTrie()
    for phrase in ("has no", "no history of", "history of", "<NUM> years ago"):
        trie.add(phrase.replace("<NUM>", NUM).split(), phrase)
    words = ["he", "has", "no", "history", "of", "asthma", "3", "years", "ago"]
    assert [(s, e, v[0]) for s, e, v in trie.find_all(words)] == [
        (2, 5, "no history of"),
        (6, 9, "<NUM> years ago"),
    ]


@pytest.mark.parametrize(
    ("sentence", "target", "expected"),
    [
        ("no evidence of pneumonia , effusion or pneumothorax", "pneumothorax", {"negated"}),
        ("no fever but cough", "cough", set()),
        ("pneumonia is absent", "pneumonia", {"negated"}),
        ("fever : none", "fever", {"negated"}),
        ("fever : no", "fever", {"negated"}),
        ("extremities : no clubbing , edema", "edema", {"negated"}),
        ("rule out sepsis", "sepsis", {"possible"}),
        ("sepsis cannot be excluded", "sepsis", {"possible"}),
        ("pneumonia vs atelectasis", "pneumonia", {"possible"}),
        ("mother had breast cancer", "breast cancer", {"family"}),
        ("breast cancer in her mother", "breast cancer", {"family"}),
        ("history of mi , no chest pain", "chest pain", {"negated"}),
        ("history of mi , no chest pain", "mi", {"historical"}),
        ("call if fever develops", "fever", {"hypothetical"}),
        ("no family history of cancer", "cancer", {"negated", "family"}),
        ("no change in the nodule", "nodule", set()),
    ],
)
def test_scopes(context: ConTextComponent, sentence: str, target: str, expected: set[str]) -> None:
    assert flags(context, sentence, target) == expected


def test_post_negation_of_a_result_does_not_negate_the_test(context: ConTextComponent) -> None:
    assert flags(context, "chest x-ray : negative", "chest x-ray", kind="procedure") == set()
    assert flags(context, "chest x-ray : negative", "chest x-ray", kind="condition") == {"negated"}


def test_nearer_trigger_wins_between_negated_and_possible(context: ConTextComponent) -> None:
    assert flags(context, "denies cough ; possible pneumonia", "pneumonia") == {"possible"}
