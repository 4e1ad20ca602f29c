"""Fit the transformer preset: `train_transformer(train, val, config, device) -> TransformerCoder`.

1. Hold out a fixed share of `train` (chosen by a hash of the encounter id, so the split never changes
   between runs) for calibration and thresholds; the rest fits the weights. `val` is only measured.
2. Labels = codes gold in at least `min_code_count` fitting encounters; the label queries start from the
   encoder's embeddings of the code titles.
3. AdamW (encoder and head learning rates apart), linear warmup then decay, BCE (or focal / ASL) on the
   label logits plus a sentence/description matching loss that keeps the bi-encoder retrieval path
   trained, gradient clipping, bf16 autocast on CUDA only, deterministic seeds.
4. Calibration per source and task (Platt or isotonic) and decision thresholds on the held-out split.
5. Metrics on `val`: MAP, micro P/R/F1, ECE, recall of codes never seen in training.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from medcode.data.codesystems import CodeSets
from medcode.data.errors import InvalidInputError
from medcode.data.types import Encounter, Mention, Result, Task
from medcode.evaluation.metrics import average_precision
from medcode.model.calibration import Calibrator, expected_calibration_error, fit_isotonic, fit_platt
from medcode.model.thresholds import tune_task_thresholds
from medcode.model.transformer.codes import Label, gold_labels, label_text, title_of
from medcode.model.transformer.config import TransformerConfig

log = logging.getLogger(__name__)

TASKS: tuple[Task, ...] = ("diagnosis", "procedure")


# -- public entry point --------------------------------------------------------------------------------


def train_transformer(
    train: list[Encounter],
    val: list[Encounter],
    config: TransformerConfig,
    device: str = "cpu",
    *,
    code_sets: CodeSets,
    mention_extractor: Callable[[Encounter], list[Mention]] | None = None,
) -> Any:
    """Fit, calibrate on a held-out split of `train`, measure on `val`; returns a TransformerCoder.

    `code_sets`: the code knowledge of the training data (procedure systems and label titles; the pack
    keeps the titles). `mention_extractor` (encounter -> mentions) replaces the project's text pipeline
    (tests use it).
    """
    from medcode.model.transformer.coder import TransformerCoder
    from medcode.model.transformer.network import LabelAttentionNet, load_encoder

    config = config.for_device(device)
    _check_device(device)
    threads = seed_everything(config)
    fit, held_out = split_held_out(train, config.calibration_fraction)
    if not fit:
        raise InvalidInputError("the transformer needs at least one training encounter with gold codes")
    labels, counts = build_labels(fit, config.min_code_count, code_sets)
    if not labels:
        raise InvalidInputError("no code reaches min_code_count in the training encounters")
    log.info(
        "transformer: %d fitting / %d held-out encounters, %d labels, device %s, %d threads",
        len(fit),
        len(held_out),
        len(labels),
        device,
        threads,
    )
    encoder, tokenizer = load_encoder(config.encoder_path, config.num_layers)
    net = LabelAttentionNet(encoder, len(labels)).to(device)
    _init_label_head(net, tokenizer, labels, counts, len(fit), config, device)
    coder = TransformerCoder(
        net,
        tokenizer,
        labels,
        config,
        version="unfitted",
        code_set_version=code_sets.version,
        device=device,
        mention_extractor=mention_extractor,
    )
    started = time.perf_counter()
    history = Trainer(coder, config, device, code_sets=code_sets).fit(fit, labels)
    train_seconds = time.perf_counter() - started
    coder.net.eval()
    coder._fingerprint = None
    coder._title_index = None

    cal_metrics = calibrate(coder, held_out, code_sets)
    fingerprint = training_fingerprint(train)
    coder._version = f"transformer-{datetime.now(UTC):%Y%m%d%H%M%S}-{fingerprint[:8]}"
    coder.training_data = {
        "fingerprint": fingerprint,
        "encounters": len(train),
        "fitting_encounters": len(fit),
        "held_out_encounters": len(held_out),
        "held_out_ids_sha256": hashlib.sha256(
            "\n".join(sorted(e.encounter_id for e in held_out)).encode()
        ).hexdigest(),
        "labels": len(labels),
    }
    metrics: dict[str, Any] = {
        "train_seconds": round(train_seconds, 2),
        "train_steps": history.steps,
        "train_step_seconds": round(train_seconds / max(history.steps, 1), 4),
        "train_loss_first_epoch": history.epoch_losses[0] if history.epoch_losses else None,
        "train_loss_last_epoch": history.epoch_losses[-1] if history.epoch_losses else None,
        "train_epoch_losses": history.epoch_losses,
        "device": device,
        "torch_threads": threads,
        **cal_metrics,
    }
    if val:
        started = time.perf_counter()
        results = [coder.result_from_scores(e, s) for e, s in zip(val, coder.score_many(val), strict=True)]
        metrics["val_seconds"] = round(time.perf_counter() - started, 2)
        metrics.update({f"val_{k}": v for k, v in evaluate_results(val, results, coder.labels).items()})
    coder.metrics = metrics
    log.info("transformer trained in %.1f s; metrics %s", train_seconds, _short(metrics))
    return coder


# -- data ------------------------------------------------------------------------------------------------


def split_held_out(
    encounters: Sequence[Encounter], fraction: float
) -> tuple[list[Encounter], list[Encounter]]:
    """(fit, held_out): an encounter is held out when a hash of its id falls under `fraction`."""
    if fraction <= 0:
        return list(encounters), []
    fit: list[Encounter] = []
    held: list[Encounter] = []
    for e in encounters:
        bucket = int(hashlib.sha256(e.encounter_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if bucket < fraction else fit).append(e)
    if not fit and held:
        fit, held = held, []
    return fit, held


def build_labels(
    encounters: Sequence[Encounter], min_count: int, code_sets: CodeSets
) -> tuple[list[Label], list[int]]:
    """Codes gold in at least `min_count` encounters (sorted by system then code), with titles and counts."""
    counter: Counter[tuple[str, str]] = Counter()
    for e in encounters:
        counter.update({(lab.system, lab.code) for lab in gold_labels(e, code_sets)})
    keys = sorted(k for k, n in counter.items() if n >= max(min_count, 1))
    labels = [Label(system, code, title_of(system, code, code_sets)) for system, code in keys]
    return labels, [counter[k] for k in keys]


def training_fingerprint(encounters: Sequence[Encounter]) -> str:
    """sha256 over the training encounters' ids, texts and gold codes (order-independent)."""
    lines = []
    for e in encounters:
        texts = "\x1f".join(f"{d.document_id}\x1e{d.text}" for d in e.documents)
        gold = e.gold.model_dump_json() if e.gold is not None else ""
        lines.append(hashlib.sha256(f"{e.encounter_id}\x1d{texts}\x1d{gold}".encode()).hexdigest())
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def seed_everything(config: TransformerConfig) -> int:
    """Seeds python, numpy and torch; sets torch threads; returns the thread count."""
    import torch

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    threads = config.num_threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError("--device cuda was asked for but no CUDA device is available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise InvalidInputError(f"unknown device {device!r} (cpu or cuda)")


def _init_label_head(
    net: Any,
    tokenizer: Any,
    labels: Sequence[Label],
    counts: Sequence[int],
    n_docs: int,
    config: TransformerConfig,
    device: str,
) -> None:
    import torch

    from medcode.model.transformer.network import embed_many

    descriptions = embed_many(
        net, tokenizer, [label_text(lab) for lab in labels], config.title_max_tokens, device
    )
    prior = torch.tensor(counts, dtype=torch.float32) / max(n_docs, 1)
    net.init_labels(descriptions.to(device), prior.to(device))


# -- the training loop -------------------------------------------------------------------------------------


@dataclass
class History:
    steps: int = 0
    epoch_losses: list[float] = field(default_factory=list)


class Trainer:
    """Owns the optimisation of a TransformerCoder's network; the coder itself stays an inference object."""

    def __init__(self, coder: Any, config: TransformerConfig, device: str, *, code_sets: CodeSets) -> None:
        self.coder = coder
        self.code_sets = code_sets
        self.net = coder.net
        self.config = config
        self.device = device

    def fit(self, encounters: Sequence[Encounter], labels: Sequence[Label]) -> History:
        import torch
        from tqdm.auto import tqdm

        from medcode.model.transformer.network import autocast, collate, embed_many, tokenize_texts

        cfg = self.config
        index = {(lab.system, lab.code): i for i, lab in enumerate(labels)}
        encoded, targets = [], []
        for e in tqdm(encounters, desc="tokenizing", unit="note", leave=False):
            enc = self.coder.encode(e)
            if enc.n_tokens == 0:
                continue
            row = torch.zeros(len(labels))
            for lab in gold_labels(e, self.code_sets):
                if (lab.system, lab.code) in index:
                    row[index[(lab.system, lab.code)]] = 1.0
            encoded.append(enc)
            targets.append(row)
        if not encoded:
            raise InvalidInputError("no training encounter has any text")
        title_ids, title_mask = tokenize_texts(
            self.coder.tokenizer, [label_text(lab) for lab in labels], cfg.title_max_tokens
        )
        self._freeze(cfg.freeze_layers)
        pad_id = self.coder.tokenizer.pad_token_id
        cached: list[Any] | None = None
        descriptions: Any | None = None
        if cfg.freeze_layers < 0:
            # a frozen encoder gives the same states every epoch: compute them once
            cached = self._cache_states(encoded, pad_id)
            descriptions = embed_many(
                self.net,
                self.coder.tokenizer,
                [label_text(lab) for lab in labels],
                cfg.title_max_tokens,
                self.device,
            )
        optimizer = self._optimizer()
        steps_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
        total = max(steps_per_epoch * cfg.epochs, 1)
        warmup = int(cfg.warmup_ratio * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _linear_schedule(s, warmup, total))
        generator = random.Random(cfg.seed)
        history = History()
        self.net.train()
        if cached is not None:
            self.net.encoder.eval()
        bar = tqdm(total=total, desc="training transformer", unit="step")
        for epoch in range(cfg.epochs):
            order = list(range(len(encoded)))
            generator.shuffle(order)
            running = 0.0
            for s in range(0, len(order), cfg.batch_size):
                idx = order[s : s + cfg.batch_size]
                batch = collate([encoded[i] for i in idx], pad_id).to(self.device)
                y = torch.stack([targets[i] for i in idx]).to(self.device)
                with autocast(self.device, cfg.amp):
                    if cached is None:
                        states = self.net.token_states(batch)
                    else:
                        states = _pad_states([cached[i] for i in idx]).to(self.device)
                    rows = self._sample_labels(y, generator)
                    logits, _ = self.net.label_logits(states, batch.token_mask, rows)
                    loss = label_loss(logits.float(), y if rows is None else y[:, rows], cfg)
                    if cfg.retrieval and cfg.retrieval_weight > 0:
                        loss = loss + cfg.retrieval_weight * self._retrieval_loss(
                            states, batch, y, title_ids, title_mask, generator, descriptions
                        )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self._trainable(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                history.steps += 1
                running += float(loss.detach())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss.detach()):.4f}")
            history.epoch_losses.append(round(running / steps_per_epoch, 6))
            log.info("epoch %d: mean loss %.5f", epoch + 1, history.epoch_losses[-1])
        bar.close()
        self.net.eval()
        return history

    def _sample_labels(self, y: Any, generator: random.Random) -> Any | None:
        """The label rows scored this step: all (None), or the batch's gold labels plus random others."""
        import torch

        n_labels = int(y.shape[1])
        size = self.config.train_label_sample
        if size is None or size >= n_labels:
            return None
        chosen = torch.nonzero(y.sum(0) > 0).flatten().tolist()
        taken = set(chosen)
        while len(chosen) < size:
            k = generator.randrange(n_labels)
            if k not in taken:
                taken.add(k)
                chosen.append(k)
        return torch.tensor(sorted(chosen), dtype=torch.long, device=y.device)

    def _cache_states(self, encoded: Sequence[Any], pad_id: int) -> list[Any]:
        """Token states of every encounter from the (frozen) encoder, float16 on the CPU."""
        import torch
        from tqdm.auto import tqdm

        from medcode.model.transformer.network import autocast, collate

        out: list[Any] = []
        size = self.config.eval_batch_size
        self.net.eval()
        with torch.no_grad():
            for s in tqdm(range(0, len(encoded), size), desc="encoding notes (frozen encoder)", unit="batch"):
                group = encoded[s : s + size]
                batch = collate(group, pad_id).to(self.device)
                with autocast(self.device, self.config.amp):
                    states = self.net.token_states(batch)
                out.extend(states[b, : enc.n_tokens].to(torch.float16).cpu() for b, enc in enumerate(group))
        return out

    def _retrieval_loss(
        self,
        states: Any,
        batch: Any,
        y: Any,
        title_ids: Any,
        title_mask: Any,
        generator: random.Random,
        cached_descriptions: Any | None = None,
    ) -> Any:
        """BCE on max-over-sentences similarity between the notes and sampled code descriptions."""
        import torch

        positives = torch.nonzero(y.sum(0) > 0).flatten().tolist()
        chosen = positives[: self.config.retrieval_negatives]
        taken = set(chosen)
        n_labels = y.shape[1]
        while len(chosen) < min(self.config.retrieval_negatives, n_labels):
            k = generator.randrange(n_labels)
            if k not in taken:
                taken.add(k)
                chosen.append(k)
        rows = torch.tensor(chosen, dtype=torch.long)
        mask = title_mask[rows]
        width = int(mask.sum(1).max())
        descriptions = self.net.embed_texts(
            title_ids[rows, :width].to(self.device), mask[:, :width].to(self.device)
        )
        sentences = self.net.sentence_embeddings(states, batch)
        sims = sentences @ descriptions.T  # [S, M]
        per_note = torch.stack(
            [sims[batch.sentence_owner == b].max(dim=0).values for b in range(y.shape[0])]
        )  # [B, M]
        logits = self.net.retrieval_logits(per_note)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y[:, rows.to(y.device)])

    def _freeze(self, layers: int) -> None:
        if layers == 0:
            return
        encoder = self.net.encoder
        if layers < 0:
            for p in encoder.parameters():
                p.requires_grad_(False)
            return
        for p in encoder.embeddings.parameters():
            p.requires_grad_(False)
        for layer in encoder.encoder.layer[:layers]:
            for p in layer.parameters():
                p.requires_grad_(False)

    def _trainable(self) -> list[Any]:
        return [p for p in self.net.parameters() if p.requires_grad]

    def _optimizer(self) -> Any:
        import torch

        cfg = self.config
        groups: dict[tuple[bool, bool], list[Any]] = {}
        for name, p in self.net.named_parameters():
            if not p.requires_grad:
                continue
            is_encoder = name.startswith("encoder.")
            no_decay = p.ndim < 2 or "LayerNorm" in name or name.endswith("bias")
            groups.setdefault((is_encoder, no_decay), []).append(p)
        params = [
            {
                "params": ps,
                "lr": cfg.encoder_lr if is_encoder else cfg.head_lr,
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
            }
            for (is_encoder, no_decay), ps in groups.items()
        ]
        return torch.optim.AdamW(params)


def _pad_states(states: Sequence[Any]) -> Any:
    """[B, T, H] float32 from per-encounter [n_i, H] states (zero padding; masked downstream)."""
    import torch

    width = max(int(s.shape[0]) for s in states)
    out = torch.zeros((len(states), width, int(states[0].shape[1])))
    for b, s in enumerate(states):
        out[b, : s.shape[0]] = s.float()
    return out


def _linear_schedule(step: int, warmup: int, total: int) -> float:
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(total - warmup, 1))


def label_loss(logits: Any, targets: Any, config: TransformerConfig) -> Any:
    """Mean multi-label loss: BCE, focal (Lin et al.) or asymmetric (ASL, Ridnik et al.)."""
    import torch
    import torch.nn.functional as F

    if config.loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets)
    p = torch.sigmoid(logits)
    if config.loss == "focal":
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        p_t = p * targets + (1 - p) * (1 - targets)
        return ((1 - p_t) ** config.focal_gamma * bce).mean()
    if config.loss == "asl":
        p_neg = (p - config.asl_clip).clamp(min=0)
        pos = targets * (1 - p) ** config.asl_gamma_pos * torch.log(p.clamp(min=1e-8))
        neg = (1 - targets) * p_neg**config.asl_gamma_neg * torch.log((1 - p_neg).clamp(min=1e-8))
        return -(pos + neg).mean()
    raise InvalidInputError(f"unknown loss {config.loss!r} (bce, focal or asl)")


# -- calibration and thresholds on the held-out split ------------------------------------------------------


def calibrate(coder: Any, held_out: Sequence[Encounter], code_sets: CodeSets) -> dict[str, Any]:
    """Fit calibrators per (source, task) and per-task thresholds on held-out encounters (never dev)."""
    coder.calibration = {}
    coder.thresholds = {}
    if not held_out:
        log.warning("no held-out encounters: the transformer stays uncalibrated (thresholds 0.5)")
        return {"calibration_encounters": 0}
    scores = coder.score_many(held_out, progress=True)
    by_key: dict[str, tuple[list[float], list[int]]] = {}
    for encounter, scored in zip(held_out, scores, strict=True):
        gold_keys = {(lab.system, lab.code) for lab in gold_labels(encounter, code_sets)}
        ranked: dict[str, list[Any]] = {}
        for item in scored.items:
            if item.blocked is None:
                ranked.setdefault(item.key, []).append(item)
        for key, items in ranked.items():
            items.sort(key=lambda it: -it.raw)
            xs, ys = by_key.setdefault(key, ([], []))
            for item in items[: coder.config.max_candidates]:
                xs.append(item.raw)
                ys.append(int((item.label.system, item.label.code) in gold_keys))
    out: dict[str, Any] = {"calibration_encounters": len(held_out)}
    for key, (xs, ys) in by_key.items():
        coder.calibration[key] = fit_calibrator(np.array(xs), np.array(ys), coder.config)
        out[f"calibration_{key.replace(':', '_')}_method"] = coder.calibration[key].method
        out[f"calibration_{key.replace(':', '_')}_positives"] = int(sum(ys))
    # thresholds on the calibrated confidences of what a result would show
    results = [coder.result_from_scores(e, s) for e, s in zip(held_out, scores, strict=True)]
    for task in TASKS:
        codes, conf, hits = [], [], []
        n_positive = 0
        for encounter, result in zip(held_out, results, strict=True):
            gold = set(encounter.gold.codes(task)) if encounter.gold else set()
            n_positive += len(gold)
            for s in result.ranked(task):
                codes.append(s.code)
                conf.append(s.confidence)
                hits.append(s.code in gold)
        if n_positive == 0:
            continue
        coder.thresholds[task] = tune_task_thresholds(
            codes, np.array(conf), np.array(hits), n_positive=n_positive
        )
        out[f"threshold_{task}"] = coder.thresholds[task].decision
    return out


def fit_calibrator(scores: np.ndarray, labels: np.ndarray, config: TransformerConfig) -> Calibrator:
    method = config.calibration
    if method == "auto":
        method = "isotonic" if int(labels.sum()) >= config.isotonic_min_positives else "platt"
    return fit_isotonic(scores, labels) if method == "isotonic" else fit_platt(scores, labels)


# -- measuring -----------------------------------------------------------------------------------------------


def evaluate_results(
    encounters: Sequence[Encounter], results: Sequence[Result], labels: Sequence[Label]
) -> dict[str, Any]:
    """MAP, micro P/R/F1, ECE and unseen-code recall per task, as flat `task_metric` keys."""
    known = {lab.code for lab in labels}
    out: dict[str, Any] = {}
    for task in TASKS:
        aps: list[float] = []
        tp = fp = fn = 0
        probs: list[float] = []
        correct: list[int] = []
        unseen_total = unseen_found = 0
        for encounter, result in zip(encounters, results, strict=True):
            gold = set(encounter.gold.codes(task)) if encounter.gold else set()
            ranked = [s.code for s in result.ranked(task)]
            suggested = {s.code for s in result.codes if s.task == task}
            if gold:
                aps.append(average_precision(ranked, gold))
            tp += len(suggested & gold)
            fp += len(suggested - gold)
            fn += len(gold - suggested)
            for s in result.ranked(task):
                probs.append(s.confidence)
                correct.append(int(s.code in gold))
            unseen = gold - known
            unseen_total += len(unseen)
            unseen_found += len(unseen & set(ranked))
        if not aps:
            continue
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        out[f"{task}_map"] = round(float(np.mean(aps)), 4)
        out[f"{task}_micro_precision"] = round(precision, 4)
        out[f"{task}_micro_recall"] = round(recall, 4)
        out[f"{task}_micro_f1"] = (
            round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
        )
        out[f"{task}_ece"] = round(expected_calibration_error(np.array(probs), np.array(correct)), 4)
        out[f"{task}_unseen_gold"] = unseen_total
        out[f"{task}_unseen_recall"] = round(unseen_found / unseen_total, 4) if unseen_total else None
        out[f"{task}_documents"] = len(aps)
    return out


def _short(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k.startswith("val_") and k.endswith(("map", "micro_f1"))}
