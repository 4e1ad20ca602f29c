"""Every mention's offsets index the original text exactly, whatever whitespace or punctuation a note has."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medcode.model.text import TextPipeline

NOTES = [
    "HISTORY OF PRESENT ILLNESS: 67 yo with HTN, DM2 and CKD 3b presents with chest pain.\n"
    "No evidence of pneumonia, effusion or pneumothorax.\nPMH: MI in 2015, s/p appendectomy.\n"
    "FHx: mother with breast cancer.\nCall if fever develops.",
    "A 29-year-old woman with a history of Crohn's disease complaining of haemorrhage.\n"
    "BP 120/80, HR 72. Dr. Smith saw her q.d. for a 1.5 cm fracture of femur; r/o stroke.",
    "Assessment and Plan: Community-acquired pneumonia versus atelectasis. Deep vein thrombosis "
    "cannot be excluded. Chest X-ray: negative. He is negative for hepatitis B.",
]
INSERTS = st.sampled_from(
    [
        " ",
        "  ",
        "\n",
        "\n\n",
        "\t",
        "\r\n",
        ",",
        ".",
        ";",
        ":",
        "-",
        "/",
        "(",
        ")",
        "'",
        "\u2019",
        "\u00a0",
        "\u2013",
        "?",
        "!",
        "*",
        "\u00e9",
        "1.",
        "e.g.",
        "Dr.",
    ]
)


def _assert_exact(pipeline: TextPipeline, text: str) -> None:
    for mention in pipeline.extract(text):
        assert 0 <= mention.start < mention.end <= len(text)
        assert mention.text == text[mention.start : mention.end]
        assert mention.text.strip() == mention.text


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    note=st.sampled_from(NOTES),
    insertions=st.lists(st.tuples(st.floats(0, 1), INSERTS), max_size=25),
)
def test_mention_offsets_index_the_original_text(
    small_pipeline: TextPipeline, note: str, insertions: list[tuple[float, str]]
) -> None:
    text = note
    for where, piece in insertions:
        position = int(where * len(text))
        text = text[:position] + piece + text[position:]
    _assert_exact(small_pipeline, text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300))
def test_offsets_hold_for_arbitrary_text(small_pipeline: TextPipeline, text: str) -> None:
    _assert_exact(small_pipeline, text)


def test_clean_notes_find_mentions_with_exact_offsets(small_pipeline: TextPipeline) -> None:
    for note in NOTES:
        mentions = small_pipeline.extract(note)
        assert mentions
        _assert_exact(small_pipeline, note)
