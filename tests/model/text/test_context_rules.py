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


@pytest.mark.parametrize(
    ("sentence", "target", "expected"),
    [
        # a negated allergy phrase is one item: what follows its comma is the patient's background
        (
            "no known drug allergies , ex-smoker , morbid obesity with hepatic steatosis",
            "drug allergies",
            {"negated"},
        ),
        (
            "no known drug allergies , ex-smoker , morbid obesity with hepatic steatosis",
            "morbid obesity",
            set(),
        ),
        (
            "no known drug allergies , ex-smoker , morbid obesity with hepatic steatosis",
            "hepatic steatosis",
            set(),
        ),
        ("without known drug allergies , hypertension and diabetes mellitus", "hypertension", set()),
        ("without known drug allergies , hypertension and diabetes mellitus", "diabetes mellitus", set()),
        # ... unless the list is coordinated by "or": one negation over every item
        ("no known drug allergies , diabetes or hypertension", "hypertension", {"negated"}),
        ("patient with no known drug allergies", "drug allergies", {"negated"}),
        # "no previous episodes of" is one negation trigger, not "no" + a history trigger
        ("no previous episodes of syncope", "syncope", {"negated"}),
        # "until" ends the negated period: what follows is present
        ("no previous seizures until the present headache", "seizures", {"negated"}),
        ("no previous seizures until the present headache", "headache", set()),
        ("no abdominal pain until the day of admission , when jaundice appeared", "jaundice", set()),
        # an indefinite or definite article after the comma starts a new finding, not another list item
        ("no peritoneal signs , a tender mass in the left iliac fossa", "tender mass", set()),
        ("no jaundice , the ascites had increased", "ascites", set()),
        ("no evidence of pleural effusion , a mass or lymphadenopathy", "lymphadenopathy", {"negated"}),
        # "negative for" (a result's object): a new clause after the comma has its own subject
        ("blood cultures were negative for mrsa , and anemia was noted on admission", "mrsa", {"negated"}),
        ("blood cultures were negative for mrsa , and anemia was noted on admission", "anemia", set()),
        (
            "serology negative for hiv and hepatitis c , and tuberculosis was confirmed",
            "hepatitis c",
            {"negated"},
        ),
        ("serology negative for hiv and hepatitis c , and tuberculosis was confirmed", "tuberculosis", set()),
        ("he denies fever , and dyspnea is present since yesterday", "dyspnea", set()),
        ("he denies fever , chills , and cough , and was admitted", "cough", {"negated"}),
        # lists under one negation stay negated
        ("no fever , chills or cough", "chills", {"negated"}),
        ("no fever , chills or cough", "cough", {"negated"}),
        ("he denies chest pain , dyspnea , or palpitations", "palpitations", {"negated"}),
        ("he denies chest pain , dyspnea , or palpitations", "dyspnea", {"negated"}),
        ("denies nausea , vomiting , abdominal pain , melena", "melena", {"negated"}),
        ("negative for hiv , hepatitis c , and tuberculosis", "tuberculosis", {"negated"}),
        ("no fever , chills or cough were reported", "cough", {"negated"}),
        ("cultures were negative for mrsa , tuberculosis and endocarditis", "endocarditis", {"negated"}),
        ("no weight loss , night sweats or fever until last week", "fever", {"negated"}),
        ("she remained free of seizures , headache and vomiting", "vomiting", {"negated"}),
    ],
)
def test_negation_scope_ends_where_the_list_ends(
    context: ConTextComponent, sentence: str, target: str, expected: set[str]
) -> None:
    assert flags(context, sentence, target) == expected
