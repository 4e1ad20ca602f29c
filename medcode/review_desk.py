"""The review path of the learning-loop simulation, composed here because it joins training and serving
(which may not import each other): a `ReviewDesk` drives the service's own storage and decision code
(`serving.services`: submit, claim, decide, finalize; `serving.feedback`: export) and implements
`training.simulate.FeedbackDesk`; its `SimulatedCoder` decides every item by the gold codes like a careful
human coder would:

- a suggested code that is gold is accepted;
- a wrong suggestion is replaced by a missing gold code of the same category when there is one
  (E11.9 -> E11.65), otherwise rejected with a reason;
- a gold code the model did not suggest is added with evidence: the span the corpus locates for it
  (CodiEsp-X evidence aligned to the English text), else the evidence the model gave it as a candidate,
  else the sentence that shares most words with the code's title.

Codes the code sets do not know cannot be added through the service (it validates every code), as with
a real coder; they are counted.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from medcode.data.feedback import FeedbackExample
from medcode.data.types import Encounter, Evidence, Gold, task_of_system
from medcode.evaluation.scoring import normalize_code
from medcode.model.base import Coder
from medcode.model.text.sentences import sentence_spans
from medcode.serving.auth import SYSTEM_PRINCIPAL, Principal
from medcode.serving.db import Database
from medcode.serving.errors import ServiceError
from medcode.serving.feedback import export_feedback
from medcode.serving.schemas.review import (
    DecisionCreate,
    EvidenceCreate,
    FinalizeCreate,
    OverrideCreate,
    ReviewItemPublic,
)
from medcode.serving.services import encounters as encounter_service
from medcode.serving.services import keys as key_service
from medcode.serving.services import review as review_service
from medcode.training.simulate import DeskFactory, FeedbackDesk, Hints, PriorityFn

log = logging.getLogger(__name__)

SYSTEM_OF_TASK: dict[str, str] = {"diagnosis": "ICD-10-CM", "procedure": "ICD-10-PCS"}
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "of",
        "the",
        "and",
        "or",
        "with",
        "without",
        "in",
        "to",
        "due",
        "other",
        "unspecified",
        "not",
        "elsewhere",
        "classified",
    ]
)


class SimClock:
    """Simulated time: every call is one minute after the previous one."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@dataclass
class Plan:
    """What the simulated coder does with one item."""

    decisions: list[DecisionCreate] = field(default_factory=list)
    fallbacks: dict[int, DecisionCreate] = field(default_factory=dict)
    """decision index -> what to send instead when the service refuses it (a replace becomes a reject)."""


@dataclass
class ReviewStats:
    """The simulated coder's decisions the service stored, by action, and what it refused."""

    accepted: int = 0
    rejected: int = 0
    """Suggested codes rejected, including those rejected because they could not be finalized."""
    replaced: int = 0
    """Suggested codes replaced by the gold code the note documents more precisely."""
    added: int = 0
    """Gold codes the model did not suggest, added with an evidence span."""
    refused: int = 0
    """Decisions the service refused (codes it does not know)."""
    unfinalizable: int = 0
    """Codes the coding rules would not let be final (rejected before finalizing)."""
    evidence: Counter[str] = field(default_factory=Counter)
    """Where each added code's evidence span came from (`find_evidence`'s source) -> codes."""

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "replaced": self.replaced,
            "added": self.added,
            "refused": self.refused,
            "unfinalizable": self.unfinalizable,
            "added_evidence": dict(self.evidence),
        }


class SimulatedCoder:
    """Decides review items by the gold codes (see the module docstring)."""

    def __init__(self, gold: Mapping[str, Gold], hints: Hints | None = None) -> None:
        self.gold = gold
        self.hints = hints or {}
        self.stats = ReviewStats()

    def plan(self, item: ReviewItemPublic) -> Plan:
        gold = self.gold.get(item.encounter_id) or Gold()
        wanted: dict[tuple[str, str], str] = {
            (task, normalize_code(task, c)): c
            for task in ("diagnosis", "procedure")
            for c in gold.codes(task)  # type: ignore[arg-type]
        }
        in_item = {_key(c.system, c.code) for c in item.codes}
        plan = Plan()
        wrong: list[tuple[tuple[str, str], Any]] = []
        for code in item.codes:
            if _key(code.system, code.code) in wanted:
                plan.decisions.append(_decision("accept", code.code, code.system))
            else:
                wrong.append((_key(code.system, code.code), code))
        missing = [k for k in wanted if k not in in_item]
        used: set[tuple[str, str]] = set()
        for (task, normalized), code in wrong:
            reject = _decision("reject", code.code, code.system, reason="not supported by the note")
            sibling = next(
                (m for m in missing if m[0] == task and m[1][:3] == normalized[:3] and m not in used), None
            )
            if sibling is None:
                plan.decisions.append(reject)
                continue
            used.add(sibling)
            plan.fallbacks[len(plan.decisions)] = reject
            plan.decisions.append(
                _decision(
                    "replace",
                    code.code,
                    code.system,
                    replacement=wanted[sibling],
                    replacement_system=SYSTEM_OF_TASK[sibling[0]],
                    reason="the note documents a more precise code",
                )
            )
        for missing_key in missing:
            if missing_key in used:
                continue
            span, source = self.find_evidence(item, *missing_key)
            self.stats.evidence[source] += 1
            plan.decisions.append(
                _decision(
                    "add",
                    wanted[missing_key],
                    SYSTEM_OF_TASK[missing_key[0]],
                    evidence=[EvidenceCreate(document_id=span.document_id, start=span.start, end=span.end)],
                )
            )
        return plan

    def find_evidence(self, item: ReviewItemPublic, task: str, key: str) -> tuple[Evidence, str]:
        docs = {d.document_id: d.text for d in item.documents}
        for doc_id in docs:
            for t, code, start, end in self.hints.get(doc_id, ()):
                if t == task and normalize_code(task, code) == key and 0 <= start < end <= len(docs[doc_id]):
                    return Evidence(document_id=doc_id, start=start, end=end), "corpus"
        for cand in item.result.candidates:
            if cand.task == task and normalize_code(task, cand.code) == key:
                for ev in cand.evidence:
                    if ev.document_id in docs and 0 <= ev.start < ev.end <= len(docs[ev.document_id]):
                        return Evidence(
                            document_id=ev.document_id, start=ev.start, end=ev.end
                        ), "model_candidate"
        return best_sentence(docs, _title(key, task)), "title_overlap"


def _key(system: str, code: str) -> tuple[str, str]:
    task = task_of_system(system)
    return task, normalize_code(task, code)


def _decision(action: str, code: str, system: str, **fields: Any) -> DecisionCreate:
    return DecisionCreate.model_validate({"action": action, "code": code, "system": system, **fields})


def _title(code: str, task: str) -> str:
    from medcode.serving.services.codes import lookup_code

    ref = lookup_code(code, SYSTEM_OF_TASK[task])
    return ref.title if ref is not None else ""


def best_sentence(docs: Mapping[str, str], title: str) -> Evidence:
    """The sentence sharing most content words with `title` (the first sentence when none shares any)."""
    words = {w for w in _WORD.findall(title.lower()) if w not in _STOP}
    best: tuple[int, str, int, int] | None = None
    for doc_id, text in docs.items():
        for start, end in sentence_spans(text):
            overlap = len(words & set(_WORD.findall(text[start:end].lower())))
            if best is None or overlap > best[0]:
                best = (overlap, doc_id, start, end)
    if best is None:
        doc_id, text = next(iter(docs.items()))
        return Evidence(document_id=doc_id, start=0, end=max(1, len(text)))
    return Evidence(document_id=best[1], start=best[2], end=best[3])


class ReviewDesk:
    """One review service database with an EHR integration key and a coder key; `human` works its queue."""

    def __init__(
        self,
        database_url: str,
        human: SimulatedCoder,
        *,
        lease_seconds: float = 900.0,
        clock: SimClock | None = None,
    ) -> None:
        self.database = Database.connect(database_url)
        self.human = human
        self.lease_seconds = lease_seconds
        self.clock = clock or SimClock()
        with self.database.sessions() as session:
            ehr = key_service.create(session, SYSTEM_PRINCIPAL, "integration", "simulated EHR")
            coder = key_service.create(session, SYSTEM_PRINCIPAL, "coder", "simulated coder")
        self.ehr = Principal(ehr.key_id, ehr.name, ehr.role)
        self.coder = Principal(coder.key_id, coder.name, coder.role)
        self.submitted = 0
        self.auto_accepted = 0
        self.reviewed = 0

    def close(self) -> None:
        self.database.dispose()

    def submit(
        self, encounter: Encounter, coder: Coder, priority_fn: PriorityFn, *, force_review: bool = False
    ) -> str:
        """Suggest and store the encounter as the API does; returns its status."""
        note = encounter.model_copy(update={"gold": None})
        result = encounter_service.suggest(coder, note)
        with self.database.sessions() as session:
            view, _ = encounter_service.submit_encounter(
                session,
                self.ehr,
                note,
                result,
                force_review=force_review,
                now=self.clock(),
                priority_fn=priority_fn,
            )
        self.submitted += 1
        if view.status == "auto_accepted":
            self.auto_accepted += 1
        return view.status

    def open_items(self) -> int:
        with self.database.sessions() as session:
            return review_service.list_queue(session, now=self.clock(), limit=1).total

    def review(self, budget: int, *, progress: bool = False) -> int:
        """Claim, decide and finalize up to `budget` items in queue order; returns how many."""
        human = self.human
        from tqdm import tqdm

        done = 0
        bar = tqdm(total=budget, desc="simulated review", unit="item", leave=False, disable=not progress)
        while done < budget:
            with self.database.sessions() as session:
                claim = review_service.claim_next(
                    session, self.coder, now=self.clock(), lease_seconds=self.lease_seconds
                )
            if claim is None:
                break
            with self.database.sessions() as session:
                item = review_service.get_item(session, claim.item_id)
            self._apply(item, human.plan(item), human.stats)
            self._finalize(claim.item_id, human.stats)
            done += 1
            bar.update()
        bar.close()
        self.reviewed += done
        return done

    def _finalize(self, item_id: int, stats: ReviewStats) -> None:
        """Finalize; when the coding rules block it (a gold code the service cannot take as final, such as
        a 4-character PCS table prefix), reject the codes each problem names, as a coder who cannot fix
        them from the note would, and finalize again; what still blocks is overridden with a reason."""
        try:
            with self.database.sessions() as session:
                review_service.finalize(session, item_id, self.coder, now=self.clock())
            return
        except review_service.FinalizeBlocked as blocked:
            problems = blocked.problems
        with self.database.sessions() as session:
            systems = {c.code: c.system for c in review_service.get_item(session, item_id).codes}
        for code in dict.fromkeys(c for problem in problems for c in problem.codes if c in systems):
            reject = _decision("reject", code, systems[code], reason="cannot be made valid from the note")
            if self._send(item_id, reject):
                stats.rejected += 1
                stats.unfinalizable += 1
        request = FinalizeCreate(
            accept_undecided=True, override=OverrideCreate(reason="simulated coder: accepted as coded")
        )
        with self.database.sessions() as session:
            review_service.finalize(session, item_id, self.coder, now=self.clock(), request=request)

    def _apply(self, item: ReviewItemPublic, plan: Plan, stats: ReviewStats) -> None:
        for index, decision in enumerate(plan.decisions):
            sent = self._send(item.item_id, decision)
            if not sent and index in plan.fallbacks:
                decision = plan.fallbacks[index]
                sent = self._send(item.item_id, decision)
            if not sent:
                stats.refused += 1
                continue
            if decision.action == "accept":
                stats.accepted += 1
            elif decision.action == "reject":
                stats.rejected += 1
            elif decision.action == "replace":
                stats.replaced += 1
            else:
                stats.added += 1

    def _send(self, item_id: int, decision: DecisionCreate) -> bool:
        with self.database.sessions() as session:
            try:
                review_service.record_decisions(
                    session,
                    item_id,
                    self.coder,
                    [decision],
                    now=self.clock(),
                    lease_seconds=self.lease_seconds,
                )
            except ServiceError as exc:
                session.rollback()
                log.debug("the service refused a simulated %s of %s: %s", decision.action, decision.code, exc)
                return False
        return True

    def export(self, exclude_encounter_ids: Iterable[str] = ()) -> list[FeedbackExample]:
        with self.database.sessions() as session:
            examples = export_feedback(session, exclude_encounter_ids=exclude_encounter_ids)
            session.rollback()
        return examples

    def review_stats(self) -> dict[str, Any]:
        return self.human.stats.to_json()


def gold_of(encounters: Iterable[Encounter]) -> dict[str, Gold]:
    return {e.encounter_id: e.gold for e in encounters if e.gold is not None}


def sqlite_desks(folder: Path) -> DeskFactory:
    """Desks backed by a fresh SQLite service database each, `folder/review-<name>.db`."""

    def open_desk(name: str, gold: Mapping[str, Gold], hints: Hints) -> FeedbackDesk:
        return ReviewDesk(f"sqlite:///{Path(folder) / f'review-{name}.db'}", SimulatedCoder(gold, hints))

    return open_desk
