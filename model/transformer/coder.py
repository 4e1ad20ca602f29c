"""`TransformerCoder`: the trained network as a `Coder` (one encounter in, one `Result` out).

Two steps, kept apart so that the trainer can fit calibration on raw scores:

- `score_many(encounters)` -> raw scores: a logit per label seen in training (label-wise attention) and,
  for billable ICD-10-CM codes never seen in training, the best cosine similarity between a note sentence
  and the code's description; each with its evidence sentence (the one holding most of the label's
  attention, or the most similar one) as offsets into the document text.
- `result_from_scores(encounter, scores)` -> calibrated confidence per source and task, decision
  thresholds, codes / candidates, routing (model.routing).

Clinical safety: when the text pipeline (model.text) is installed, tokens of negated, family and
hypothetical mentions are masked before encoding (config.mask_non_present), and a code whose evidence rests
only on such mentions is dropped, never suggested nor offered as a candidate.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from medcode.data.types import Encounter, Evidence, Mention, Result, Task
from medcode.model.calibration import Calibrator
from medcode.model.result import RulesStep, Scored, build_result
from medcode.model.rules.pipeline import RulesConfig, build_rules
from medcode.model.thresholds import TaskThresholds
from medcode.model.transformer.codes import Label
from medcode.model.transformer.config import TransformerConfig
from medcode.model.transformer.network import LabelAttentionNet, autocast, collate
from medcode.model.transformer.retrieval import TitleIndex, build_title_index
from medcode.model.transformer.text import EncodedEncounter, default_mentions, encode_encounter

log = logging.getLogger(__name__)

Source = Literal["label", "retrieval"]
MentionExtractor = Callable[[Encounter], list[Mention]]
TASKS: tuple[Task, ...] = ("diagnosis", "procedure")
_TIE_BREAK = 1e-7
_TOP_TOKEN_MASS = 0.5
"""The tokens holding this share of a label's attention inside its evidence sentence are its support."""


@dataclass
class ScoredCode:
    """One raw score of one code for one encounter, with the sentence that supports it."""

    label: Label
    source: Source
    raw: float
    evidence: Evidence | None = None
    blocked: str | None = None
    """Why the code may not be suggested (its evidence is only negated/family/hypothetical mentions)."""

    @property
    def key(self) -> str:
        return calibration_key(self.source, self.label.task)


@dataclass
class EncounterScores:
    encounter_id: str
    items: list[ScoredCode] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    """The text pipeline's mentions (the coding rules read them)."""


def calibration_key(source: Source, task: Task) -> str:
    return f"{source}:{task}"


class TransformerCoder:
    """The transformer preset at inference time (see the module docstring)."""

    def __init__(
        self,
        net: LabelAttentionNet,
        tokenizer: Any,
        labels: Sequence[Label],
        config: TransformerConfig,
        *,
        version: str,
        code_set_version: str,
        calibration: dict[str, Calibrator] | None = None,
        thresholds: dict[str, TaskThresholds] | None = None,
        device: str = "cpu",
        mention_extractor: MentionExtractor | None = None,
        metrics: dict[str, Any] | None = None,
        training_data: dict[str, Any] | None = None,
        rules: RulesConfig | None = None,
    ) -> None:
        if net.n_labels != len(labels):
            raise ValueError(f"the network has {net.n_labels} labels but {len(labels)} were given")
        self.net = net.to(device).eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.config = config
        self._version = version
        self._code_set_version = code_set_version
        self.calibration: dict[str, Calibrator] = dict(calibration or {})
        self.thresholds: dict[str, TaskThresholds] = dict(thresholds or {})
        self.device = device
        self.mention_extractor: MentionExtractor = mention_extractor or default_mentions
        self.metrics: dict[str, Any] = dict(metrics or {})
        self.training_data: dict[str, Any] = dict(training_data or {})
        self._title_index: TitleIndex | None = None
        self._fingerprint: str | None = None
        self.rules_config = rules or RulesConfig()
        self._rules: RulesStep | None = None
        self._rules_built = False
        self._task_rows = {
            task: torch.tensor([i for i, lab in enumerate(self.labels) if lab.task == task], dtype=torch.long)
            for task in TASKS
        }

    # -- Coder protocol ------------------------------------------------------------------------------
    @property
    def pipeline(self) -> None:
        """None: the network reads mentions through `mention_extractor` (the installed text pipeline)."""
        return None

    @property
    def version(self) -> str:
        return self._version

    @property
    def code_set_version(self) -> str:
        return self._code_set_version

    @property
    def calibrated(self) -> bool:
        return bool(self.calibration)

    def suggest(self, encounter: Encounter) -> Result:
        return self.result_from_scores(encounter, self.score_many([encounter])[0])

    def save(self, path: Path) -> Path:
        """Write the model as a pack folder (`model.transformer.pack`)."""
        from medcode.model.transformer.pack import save_pack

        return save_pack(self, Path(path))

    # -- raw scores ----------------------------------------------------------------------------------

    def encode(self, encounter: Encounter) -> EncodedEncounter:
        mentions = self.mention_extractor(encounter)
        return encode_encounter(
            encounter,
            self.tokenizer,
            self.config.chunk_tokens,
            self.config.max_tokens,
            mentions=mentions,
            mask_non_present=self.config.mask_non_present,
        )

    @torch.no_grad()
    def score_many(
        self, encounters: Sequence[Encounter], batch_size: int | None = None, progress: bool = False
    ) -> list[EncounterScores]:
        """Raw scores with evidence for each encounter (same order)."""
        from tqdm.auto import tqdm

        size = batch_size or self.config.eval_batch_size
        out: list[EncounterScores] = []
        self.net.eval()
        index = self.title_index() if self.config.retrieval else None
        starts = range(0, len(encounters), size)
        for s in tqdm(starts, desc="scoring", unit="batch", disable=not progress, leave=False):
            group = encounters[s : s + size]
            encoded = [self.encode(e) for e in group]
            scored = [
                EncounterScores(e.encounter_id, mentions=[m for _, m in enc.mentions])
                for e, enc in zip(group, encoded, strict=True)
            ]
            live = [i for i, enc in enumerate(encoded) if enc.n_tokens > 0]
            if live:
                batch = collate([encoded[i] for i in live], self.tokenizer.pad_token_id).to(self.device)
                with autocast(self.device, self.config.amp):
                    states = self.net.token_states(batch)
                    logits, attn = self.net.label_logits(states, batch.token_mask)
                    sentences = self.net.sentence_embeddings(states, batch) if index is not None else None
                for b, i in enumerate(live):
                    enc, encounter = encoded[i], group[i]
                    n = enc.n_tokens
                    items = self._label_items(encounter, enc, logits[b].float().cpu(), attn[b, :, :n])
                    if index is not None and sentences is not None:
                        own = sentences[batch.sentence_owner == b].float().cpu()
                        token_states = states[b, :n].float().cpu()
                        items += self._retrieval_items(encounter, enc, own, token_states, index)
                    scored[i].items = items
            out.extend(scored)
        return out

    def _label_items(
        self, encounter: Encounter, enc: EncodedEncounter, logits: Tensor, attn: Tensor
    ) -> list[ScoredCode]:
        items: list[ScoredCode] = []
        token_sentence = torch.tensor(enc.token_sentence, dtype=torch.long)
        keep = 2 * self.config.max_candidates
        for task in TASKS:
            rows = self._task_rows[task]
            if rows.numel() == 0:
                continue
            top = rows[torch.argsort(logits[rows], descending=True)[:keep]]
            att = attn[top.to(attn.device)].float().cpu()  # [K, n]
            mass = torch.zeros((len(top), len(enc.sentences))).index_add_(1, token_sentence, att)
            best = mass.argmax(dim=1)
            for k, row in enumerate(top.tolist()):
                s = int(best[k])
                in_sentence = (token_sentence == s).nonzero().flatten()
                support = _top_tokens(att[k, in_sentence], in_sentence)
                items.append(
                    ScoredCode(
                        label=self.labels[row],
                        source="label",
                        raw=float(logits[row]),
                        evidence=_evidence(encounter, enc, s),
                        blocked=_blocked(enc, s, support),
                    )
                )
        return items

    def _retrieval_items(
        self,
        encounter: Encounter,
        enc: EncodedEncounter,
        sentences: Tensor,
        states: Tensor,
        index: TitleIndex,
    ) -> list[ScoredCode]:
        if sentences.shape[0] == 0 or len(index) == 0:
            return []
        sims = sentences @ index.embeddings.T  # [S, n_codes]
        best, arg = sims.max(dim=0)
        best = best.masked_fill(self._seen_mask(index), -2.0)
        chosen: set[int] = set(
            torch.topk(best, min(self.config.retrieval_top_k, len(index))).indices.tolist()
        )
        per_mention = self.config.retrieval_per_mention
        if per_mention > 0:
            for vector in _mention_vectors(enc, states):
                mention_sims = (index.embeddings @ vector).masked_fill(self._seen_mask(index), -2.0)
                chosen.update(torch.topk(mention_sims, min(per_mention, len(index))).indices.tolist())
        items = []
        for col in sorted(chosen):
            if float(best[col]) <= -2.0:
                continue
            s = int(arg[col])
            label = Label("ICD-10-CM", index.codes[col], index.titles[col])
            items.append(
                ScoredCode(
                    label=label,
                    source="retrieval",
                    raw=float(best[col]),
                    evidence=_evidence(encounter, enc, s),
                    blocked=_blocked(enc, s, []),
                )
            )
        return items

    def _seen_mask(self, index: TitleIndex) -> Tensor:
        cached = getattr(index, "_seen_mask", None)
        if cached is None:
            cached = index.mask_of({lab.code for lab in self.labels if lab.system == "ICD-10-CM"})
            index._seen_mask = cached  # type: ignore[attr-defined]
        return cached

    def title_index(self) -> TitleIndex:
        """Description embeddings of the billable codes for this model's encoder (cached on disk)."""
        if self._title_index is None:
            self._title_index = build_title_index(
                self.net,
                self.tokenizer,
                code_set_version=self.code_set_version,
                encoder_fingerprint=self.weights_fingerprint(),
                restrict=self.config.retrieval_codes,
                max_tokens=self.config.title_max_tokens,
                skip_later_encounters=self.config.retrieval_skip_later_encounters,
                device=self.device,
            )
        return self._title_index

    def weights_fingerprint(self) -> str:
        """sha256 over the encoder's weights (keys the title-embedding cache)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for name, tensor in sorted(self.net.encoder.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # -- calibrated result ---------------------------------------------------------------------------

    def confidences(self, items: Sequence[ScoredCode]) -> np.ndarray:
        """Calibrated confidence of each raw score (sigmoid of the network's own logit when uncalibrated)."""
        out = np.zeros(len(items))
        by_key: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            by_key.setdefault(item.key, []).append(i)
        for key, idx in by_key.items():
            raw = np.array([items[i].raw for i in idx])
            calibrator = self.calibration.get(key)
            if calibrator is not None:
                out[idx] = calibrator(raw)
            elif key.startswith("retrieval"):
                scale = float(self.net.retrieval_scale.detach())
                shift = float(self.net.retrieval_shift.detach())
                out[idx] = 1.0 / (1.0 + np.exp(-scale * (raw - shift)))
            else:
                out[idx] = 1.0 / (1.0 + np.exp(-raw))
        return np.clip(out, 0.0, 1.0)

    def task_thresholds(self, task: Task) -> TaskThresholds:
        return self.thresholds.get(task) or TaskThresholds()

    @property
    def rules(self) -> RulesStep | None:
        """The coding-rules step of this model's rules config (built on first use; None when off)."""
        if not self._rules_built:
            self._rules = build_rules(self.rules_config)
            self._rules_built = True
        return self._rules

    def result_from_scores(self, encounter: Encounter, scores: EncounterScores) -> Result:
        """Calibrated confidences, then thresholds, coding rules and routing (medcode.model.result)."""
        usable = [item for item in scores.items if item.blocked is None]
        conf = self.confidences(usable)
        best: dict[tuple[str, str], Scored] = {}
        for item, c in zip(usable, conf, strict=True):
            # isotonic maps give ties: the raw score breaks them (changes the confidence by < 1e-6)
            confidence = float(min(1.0, c + _TIE_BREAK * _squash(item.raw)))
            ident = (item.label.system, item.label.code)
            if ident not in best or confidence > best[ident].confidence:
                best[ident] = Scored(
                    system=item.label.system,
                    code=item.label.code,
                    confidence=confidence,
                    evidence=[item.evidence] if item.evidence is not None else [],
                    description=item.label.title,
                    rationale=_rationale(item),
                    extra={"source": item.source, "raw": item.raw},
                )
        return build_result(
            encounter,
            list(best.values()),
            self.task_thresholds,
            model_version=self.version,
            code_set_version=self.code_set_version,
            calibrated=self.calibrated,
            rules=self.rules,
            mentions=scores.mentions,
            max_candidates=self.config.max_candidates,
        )

    # -- housekeeping --------------------------------------------------------------------------------

    def to(self, device: str) -> TransformerCoder:
        self.net.to(device)
        self.device = device
        self._title_index = None
        return self

    def labels_json(self) -> list[dict[str, str]]:
        return [label.to_json() for label in self.labels]


def _rationale(item: ScoredCode) -> str:
    if item.source == "label":
        return "label-wise attention over the note (code seen in training); evidence: the sentence with the most attention"
    return (
        f"description similarity {item.raw:.2f} to the note (code not seen in training); "
        "evidence: the most similar sentence"
    )


def _squash(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * max(min(x, 50.0), -50.0)))


def _evidence(encounter: Encounter, enc: EncodedEncounter, sentence: int) -> Evidence | None:
    if not 0 <= sentence < len(enc.sentences):
        return None
    span = enc.sentences[sentence]
    document = encounter.documents[span.doc]
    return Evidence(
        document_id=document.document_id,
        start=span.start,
        end=span.end,
        text=document.text[span.start : span.end],
    )


def _top_tokens(weights: Tensor, token_ids: Tensor) -> list[int]:
    """The fewest tokens (of one sentence) that hold `_TOP_TOKEN_MASS` of the sentence's attention."""
    if weights.numel() == 0:
        return []
    order = torch.argsort(weights, descending=True)
    total = float(weights.sum())
    out: list[int] = []
    acc = 0.0
    for k in order.tolist():
        out.append(int(token_ids[k]))
        acc += float(weights[k])
        if total <= 0 or acc >= _TOP_TOKEN_MASS * total:
            break
    return out


def _blocked(enc: EncodedEncounter, sentence: int, support_tokens: Sequence[int]) -> str | None:
    """'non_present_evidence' when the evidence rests only on negated/family/hypothetical mentions.

    The support is the mentions under the label's most attended tokens in the evidence sentence; when
    none of those tokens is inside a mention (or for retrieval, which has no attention), every mention
    of the sentence.
    """
    if not enc.mentions or not 0 <= sentence < len(enc.sentences):
        return None
    span = enc.sentences[sentence]
    in_sentence = [
        m for di, m in enc.mentions if di == span.doc and m.start < span.end and m.end > span.start
    ]
    if not in_sentence:
        return None
    support = [
        m
        for m in in_sentence
        if any(m.start < enc.token_end[t] and m.end > enc.token_start[t] for t in support_tokens)
    ] or in_sentence
    if all(not m.assertion.is_present for m in support):
        return "non_present_evidence"
    return None


def _mention_vectors(enc: EncodedEncounter, states: Tensor) -> list[Tensor]:
    """Unit mean token state of each present mention (condition-like types) of the encounter."""
    if not enc.mentions:
        return []
    starts = torch.tensor(enc.token_start)
    ends = torch.tensor(enc.token_end)
    docs = torch.tensor(enc.token_doc)
    out = []
    for di, m in enc.mentions:
        if not m.assertion.is_present or m.type in ("anatomy", "procedure", "other"):
            continue
        inside = (docs == di) & (starts < m.end) & (ends > m.start)
        if bool(inside.any()):
            v = states[inside].mean(0)
            out.append(v / v.norm().clamp(min=1e-6))
    return out
