from __future__ import annotations

import pytest

from medcode.data.errors import InvalidInputError
from medcode.data.types import Document, Encounter
from medcode.model.text import TextPipeline
from medcode.model.text.extensions import MENTIONS_KEY
from medcode.model.text.pipeline import PIPE_NAMES


def test_pipeline_is_a_chain_of_registered_steps(small_pipeline: TextPipeline) -> None:
    assert tuple(small_pipeline.nlp.pipe_names) == PIPE_NAMES
    assert all(
        name.startswith("medcode_") and name.endswith("_v1")
        for name in small_pipeline.nlp.pipe_factories.values()
    )


def test_context_marks_spans_and_never_drops_them(small_pipeline: TextPipeline) -> None:
    doc = small_pipeline.process("No fever. Mother had asthma. Call if cough develops.")
    spans = list(doc.spans[MENTIONS_KEY])
    assert [s.text for s in spans] == ["fever", "asthma", "cough"]
    assert [(s._.is_negated, s._.is_family, s._.is_hypothetical) for s in spans] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]


def test_extract_encounter_keeps_document_ids(small_pipeline: TextPipeline) -> None:
    encounter = Encounter(
        encounter_id="e1",
        documents=[
            Document(document_id="a", text="Fever."),
            Document(document_id="b", text="Gout and fever."),
        ],
    )
    mentions = small_pipeline.extract_encounter(encounter)
    assert [(m.document_id, m.text) for m in mentions] == [("a", "Fever"), ("b", "Gout"), ("b", "fever")]


def test_extract_many_matches_extract(small_pipeline: TextPipeline) -> None:
    texts = ["No fever.", "Gout flare, r/o cellulitis.", ""]
    assert list(small_pipeline.extract_many(texts)) == [small_pipeline.extract(t) for t in texts]


def test_notes_over_the_size_limit_are_refused(small_pipeline: TextPipeline) -> None:
    limited = TextPipeline(small_pipeline.nlp, small_pipeline.lexicon, max_note_chars=20)
    with pytest.raises(InvalidInputError, match="limit is 20"):
        limited.extract("x" * 21)
    assert limited.extract("Fever.")[0].text == "Fever"


def test_empty_and_whitespace_notes_have_no_mentions(small_pipeline: TextPipeline) -> None:
    assert small_pipeline.extract("") == []
    assert small_pipeline.extract(" \n\t ") == []


def test_importing_the_package_does_not_import_spacy() -> None:
    import subprocess
    import sys

    code = "import sys, model.text; print('spacy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_cue_word_inside_a_condition_name_does_not_negate_it(small_pipeline: TextPipeline) -> None:
    found = {
        m.text.lower(): m
        for m in small_pipeline.extract("Concussion without loss of consciousness. No asthma.")
    }
    assert found["concussion without loss of consciousness"].assertion.is_present
    assert found["asthma"].assertion.negated
