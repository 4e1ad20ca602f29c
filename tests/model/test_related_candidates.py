"""The candidate generator's "related" option: tabular relatives of a mention's strongest hits."""

from __future__ import annotations

from medcode.data.codesystems import CodeInfo
from medcode.data.types import Assertion, Document, Encounter, Mention
from medcode.model.candidates.generate import (
    CandidateGenerator,
    EncounterView,
    GeneratorConfig,
    blocked,
)
from medcode.model.candidates.lexical import LexicalIndex
from medcode.model.candidates.related import CHILD, PARENT, SIBLING, relatives, seeds_of
from medcode.model.catalog import CM, CodeCatalog, Term

CODES = [
    ("R59", "Enlarged lymph nodes", False, 1, None),
    ("R59.0", "Localized enlarged lymph nodes", True, 2, "R59"),
    ("R59.1", "Generalized enlarged lymph nodes", True, 2, "R59"),
    ("R59.9", "Enlarged lymph nodes, unspecified", True, 2, "R59"),
    ("S72", "Fracture of femur", False, 1, None),
    ("S72.0", "Fracture of head and neck of femur", False, 2, "S72"),
    ("S72.00", "Fracture of unspecified part of neck of femur", False, 3, "S72.0"),
    ("S72.3", "Fracture of shaft of femur", False, 2, "S72"),
    ("R50", "Fever of other and unknown origin", False, 1, None),
    ("R50.9", "Fever, unspecified", True, 2, "R50"),
    ("R50.2", "Drug induced fever", True, 2, "R50"),
]


def catalog() -> CodeCatalog:
    infos = [CodeInfo(CM, c, t, b, d, "18", p) for c, t, b, d, p in CODES]
    terms = [Term(CM, c, t, "title") for c, t, *_ in CODES]
    return CodeCatalog(infos, terms, "test")


def view(*mentions: Mention) -> EncounterView:
    note = Encounter(encounter_id="e1", documents=[Document(document_id="d1", text="note")])
    return EncounterView(encounter=note, mentions=list(mentions), sentences=[])


def generator(cat: CodeCatalog, **options: object) -> CandidateGenerator:
    """A generator whose only mention source is the lexicon concept (no lexical search above 1.0), so that
    the relatives of the concept are not retrieved by the search of this tiny catalog already."""
    config = GeneratorConfig(lexical_min=1.01, **options)  # type: ignore[arg-type]
    return CandidateGenerator(cat, {CM: LexicalIndex(cat.terms(CM))}, config=config)


def test_relatives_are_children_siblings_and_parent() -> None:
    cat = catalog()
    assert relatives(cat, CM, "R59.9") == {"R59.0": SIBLING, "R59.1": SIBLING, "R59": PARENT}
    # a category: its children and grandchildren, no siblings (other categories are unrelated)
    assert relatives(cat, CM, "S72") == {"S72.0": CHILD, "S72.00": CHILD, "S72.3": CHILD}
    assert relatives(cat, CM, "Z99.9") == {}


def test_seeds_are_the_best_distinct_codes_above_the_floor() -> None:
    hits = [("A", 0.9), ("B", 0.4), ("A", 0.95), ("C", 0.7), ("D", 0.7)]
    assert seeds_of(hits, 2, 0.5) == [("A", 0.95), ("C", 0.7)]
    assert seeds_of(hits, 5, 0.8) == [("A", 0.95)]


def test_option_off_adds_nothing_and_on_adds_scored_relatives() -> None:
    cat = catalog()
    m = Mention(start=0, end=24, text="enlarged lymph nodes", concepts=["R59.9"])
    off = generator(cat).generate(view(m))
    assert all(h.source != "related" for c in off.values() for h in c.present)
    on = generator(cat, related=True, related_seed_min=0.3).generate(view(m))
    related = {k[1]: c.best("related") for k, c in on.items() if c.best("related") is not None}
    # R59.9 is itself a direct hit; its siblings and parent come in as relatives of the seed
    assert {"R59.0", "R59.1", "R59"} <= set(related)
    hit = related["R59.0"]
    assert hit is not None and hit.rank == SIBLING and 0.0 < hit.score < 1.0
    assert hit.term_coverage >= 0.3  # the seed's score
    assert related["R59"] is not None and related["R59"].rank == PARENT
    # codes the mention already retrieved keep their own hits and are not re-added as relatives of it
    assert on[(CM, "R59.9")].best("related") is None


def test_relatives_are_capped_per_seed_best_own_match_first() -> None:
    cat = catalog()
    m = Mention(start=0, end=17, text="fracture of femur", concepts=["S72"])
    found = generator(cat, related=True, related_seeds=1, related_seed_min=0.3, related_per_seed=1).generate(
        view(m)
    )
    related = [k[1] for k, c in found.items() if c.best("related") is not None]
    assert len(related) == 1


def test_absent_mentions_seed_no_relatives() -> None:
    cat = catalog()
    negated = Mention(start=0, end=5, text="fever", assertion=Assertion(negated=True), concepts=["R50.9"])
    found = generator(cat, related=True, related_seed_min=0.0).generate(view(negated))
    assert (CM, "R50.2") not in found and (CM, "R50") not in found
    # the negated mention's own code is recorded as absent, never as support
    assert all(blocked(c) for c in found.values())


def test_related_min_drops_relatives_without_own_match() -> None:
    cat = catalog()
    m = Mention(start=0, end=24, text="enlarged lymph nodes", concepts=["R59.9"])
    found = generator(cat, related=True, related_seed_min=0.3, related_min=0.99).generate(view(m))
    # only the parent, whose title is the mention's words exactly, matches well enough
    assert [k[1] for k, c in found.items() if c.best("related") is not None] == ["R59"]


def test_training_option_is_saved_in_the_generator_config_and_old_packs_stay_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from medcode.model.trained.coder import DefaultConfig
    from medcode.training.options import TrainingOptions
    from medcode.training.presets import default_config

    on = default_config(TrainingOptions(dataset="jsonl", data_dir=tmp_path, related_candidates=True))
    assert GeneratorConfig(**DefaultConfig.from_json(on.to_json()).generator).related
    off = default_config(TrainingOptions(dataset="jsonl", data_dir=tmp_path))
    assert not GeneratorConfig(**off.generator).related
    # a pack saved before the option has an empty generator config: the relatives stay off
    assert not GeneratorConfig(**DefaultConfig.from_json({"generator": {}}).generator).related
