"""The simulated coder's evidence: the note sentence (split by `model.text.sentences`) that best fits a code."""

from __future__ import annotations

from medcode.review_desk import ReviewStats, best_sentence


def test_best_sentence_is_the_one_sharing_most_words_with_the_title() -> None:
    text = "Hypertension, well controlled.\nType 2 diabetes mellitus. Dr. Smith follows her."
    evidence = best_sentence({"d1": text}, "Type 2 diabetes mellitus without complications")
    assert (evidence.document_id, text[evidence.start : evidence.end]) == ("d1", "Type 2 diabetes mellitus.")


def test_best_sentence_falls_back_to_the_first_sentence() -> None:
    text = "Hypertension. Asthma."
    evidence = best_sentence({"d1": text}, "Fracture of femur")
    assert text[evidence.start : evidence.end] == "Hypertension."


def test_review_stats_report_counts_added_evidence_by_source() -> None:
    stats = ReviewStats(accepted=2, rejected=1, added=3, unfinalizable=1)
    stats.evidence.update(["corpus", "corpus", "title_overlap"])
    assert stats.to_json() == {
        "accepted": 2,
        "rejected": 1,
        "replaced": 0,
        "added": 3,
        "refused": 0,
        "unfinalizable": 1,
        "added_evidence": {"corpus": 2, "title_overlap": 1},
    }
