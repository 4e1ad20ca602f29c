"""Merge the base corpus with coder feedback into one typed training set.

Feedback comes from the service as `medcode.data.feedback.FeedbackExample`s (one per finalized review,
exported by `medcode.serving.feedback.export_feedback`). The merge rules:

- latest decision wins: when several examples name one encounter, the latest finalization is kept; an
  example replaces the base corpus's labels of the same encounter (the coder's decision is the newer one);
- rejected and replaced codes are explicit negatives: never a positive label of that encounter, even when
  the base corpus had them, and listed per encounter for trainers that weigh negatives;
- the evidence spans coders accepted or selected become `evidence` for the trainer (phrase -> code pairs
  of the default model's sentence memory);
- encounters of the evaluation set never enter training: feedback about an evaluation encounter (same id,
  or the same note text under another id) is dropped, and a base corpus that shares an id with the
  evaluation set is an error. `assert_disjoint` checks the final set again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from medcode.data.errors import InvalidInputError
from medcode.data.feedback import FeedbackExample
from medcode.data.types import Encounter, Gold, Task, task_of_system

log = logging.getLogger(__name__)

EvidenceSpan = tuple[str, str, str, int, int]
"""(task, code, document id, start, end): a text span known to support a code (the trainer's format)."""


class EvaluationLeakError(InvalidInputError):
    """An encounter of the frozen evaluation set would enter training."""


@dataclass(frozen=True)
class Negative:
    task: Task
    code: str
    kind: str
    """"rejected" or "replaced"."""
    reason: str | None = None


@dataclass(frozen=True)
class Provenance:
    """Who decided an encounter's feedback labels, and when."""

    encounter_id: str
    reviewer: str
    finalized_at: str
    model_version: str
    revision: int


@dataclass
class TrainingSet:
    """What a trainer reads: encounters whose `gold` are the labels to learn, plus feedback extras."""

    encounters: list[Encounter]
    evidence: dict[str, list[EvidenceSpan]] = field(default_factory=dict)
    """encounter id -> spans coders accepted or selected (feedback encounters only)."""
    negatives: dict[str, list[Negative]] = field(default_factory=dict)
    """encounter id -> codes a coder rejected or replaced: explicit negatives."""
    sources: dict[str, str] = field(default_factory=dict)
    """encounter id -> "base", "feedback" or "feedback_over_base"."""
    provenance: list[Provenance] = field(default_factory=list)
    dropped_evaluation: list[str] = field(default_factory=list)
    """Feedback encounters left out because they belong to the evaluation set."""
    superseded: int = 0
    """Older feedback examples replaced by a later decision on the same encounter."""

    @property
    def fingerprint(self) -> str:
        from medcode.training.default import training_fingerprint

        return training_fingerprint(self.encounters)

    @property
    def feedback_ids(self) -> list[str]:
        return [i for i, s in self.sources.items() if s != "base"]

    def summary(self) -> dict[str, Any]:
        counts = {kind: sum(1 for s in self.sources.values() if s == kind) for kind in SOURCES}
        return {
            "encounters": len(self.encounters),
            **{f"{kind}_encounters": n for kind, n in counts.items()},
            "negatives": sum(len(v) for v in self.negatives.values()),
            "evidence_spans": sum(len(v) for v in self.evidence.values()),
            "reviewers": len({p.reviewer for p in self.provenance}),
            "dropped_evaluation": len(self.dropped_evaluation),
            "superseded_feedback": self.superseded,
            "fingerprint": self.fingerprint,
        }


SOURCES = ("base", "feedback", "feedback_over_base")


def text_key(encounter: Encounter) -> str:
    """A hash of the note texts: the same note under another encounter id has the same key."""
    digest = hashlib.sha256()
    for doc in encounter.documents:
        data = " ".join(doc.text.split()).encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class EvaluationGuard:
    """The ids and note texts of the frozen evaluation set, to keep them out of training."""

    ids: frozenset[str]
    texts: frozenset[str]

    @classmethod
    def of(cls, evaluation: Iterable[Encounter]) -> EvaluationGuard:
        encounters = list(evaluation)
        return cls(frozenset(e.encounter_id for e in encounters), frozenset(text_key(e) for e in encounters))

    def holds(self, encounter: Encounter) -> bool:
        return encounter.encounter_id in self.ids or text_key(encounter) in self.texts


def latest_per_encounter(examples: Iterable[FeedbackExample]) -> tuple[list[FeedbackExample], int]:
    """The latest example of each encounter (by finalization time, then revision and item), oldest first,
    and how many older ones were superseded."""
    best: dict[str, FeedbackExample] = {}
    total = 0
    for example in examples:
        total += 1
        current = best.get(example.encounter_id)
        if current is None or _order(example) > _order(current):
            best[example.encounter_id] = example
    kept = sorted(best.values(), key=_order)
    return kept, total - len(kept)


def _order(example: FeedbackExample) -> tuple[Any, int, int]:
    return (example.finalized_at, example.revision, example.item_id)


def negatives_of(example: FeedbackExample) -> list[Negative]:
    return [
        Negative(task_of_system(n.system), n.code, n.kind, n.reason)
        for n in example.rejected
        if not any(p.code == n.code and p.system == n.system for p in example.final_codes)
    ]


def labels_of(example: FeedbackExample) -> Gold:
    """The final codes per task, without any code the same review rejected (first-seen order)."""
    negative = {(n.task, n.code) for n in negatives_of(example)}
    out: dict[str, list[str]] = {"diagnosis": [], "procedure": []}
    for code in example.final_codes:
        task = task_of_system(code.system)
        if (task, code.code) not in negative and code.code not in out[task]:
            out[task].append(code.code)
    return Gold(diagnosis=out["diagnosis"], procedure=out["procedure"])


def evidence_of(example: FeedbackExample) -> list[EvidenceSpan]:
    doc_ids = {d.document_id for d in example.encounter.documents}
    spans: list[EvidenceSpan] = []
    for code in example.final_codes:
        task = task_of_system(code.system)
        for ev in code.evidence:
            if ev.document_id in doc_ids and ev.end > ev.start:
                spans.append((task, code.code, ev.document_id, ev.start, ev.end))
    return sorted(set(spans))


def merge_feedback(
    base: Sequence[Encounter],
    feedback: Iterable[FeedbackExample],
    *,
    evaluation: Iterable[Encounter] | EvaluationGuard,
    use_evidence: bool = True,
) -> TrainingSet:
    """Base corpus + feedback -> one training set (see the module docstring for the rules)."""
    guard = evaluation if isinstance(evaluation, EvaluationGuard) else EvaluationGuard.of(evaluation)
    leaked = [e.encounter_id for e in base if guard.holds(e)]
    if leaked:
        raise EvaluationLeakError(
            f"{len(leaked)} base training encounter(s) belong to the evaluation set "
            f"(e.g. {leaked[0]!r}); use disjoint splits"
        )
    examples, superseded = latest_per_encounter(feedback)
    out = TrainingSet(encounters=[], superseded=superseded)
    by_id: dict[str, Encounter] = {}
    for enc in base:
        if enc.gold is None:
            continue
        by_id[enc.encounter_id] = enc
        out.sources[enc.encounter_id] = "base"
    for example in examples:
        encounter = example.encounter
        if guard.holds(encounter):
            out.dropped_evaluation.append(example.encounter_id)
            continue
        was_base = out.sources.get(example.encounter_id) == "base"
        by_id[example.encounter_id] = encounter.model_copy(update={"gold": labels_of(example)})
        out.sources[example.encounter_id] = "feedback_over_base" if was_base else "feedback"
        negatives = negatives_of(example)
        if negatives:
            out.negatives[example.encounter_id] = negatives
        if use_evidence:
            spans = evidence_of(example)
            if spans:
                out.evidence[example.encounter_id] = spans
        out.provenance.append(
            Provenance(
                encounter_id=example.encounter_id,
                reviewer=example.reviewer,
                finalized_at=example.finalized_at.isoformat(),
                model_version=example.model_version,
                revision=example.revision,
            )
        )
    out.encounters = list(by_id.values())
    if out.dropped_evaluation:
        log.warning(
            "%d feedback encounter(s) belong to the evaluation set and were left out of training",
            len(out.dropped_evaluation),
        )
    assert_disjoint(out.encounters, guard)
    log.info(
        "training set: %d encounters (%d from feedback, %d negatives)",
        len(out.encounters),
        len(out.feedback_ids),
        sum(len(v) for v in out.negatives.values()),
    )
    return out


def assert_disjoint(training: Iterable[Encounter], evaluation: Iterable[Encounter] | EvaluationGuard) -> None:
    """Raise EvaluationLeakError when a training encounter is an evaluation one (by id or note text)."""
    guard = evaluation if isinstance(evaluation, EvaluationGuard) else EvaluationGuard.of(evaluation)
    for enc in training:
        if guard.holds(enc):
            raise EvaluationLeakError(
                f"encounter {enc.encounter_id!r} is in the evaluation set and may not be trained on"
            )
