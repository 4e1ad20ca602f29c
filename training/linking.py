"""A code-linking encoder trained here: the packaged MiniLM fine-tuned as a bi-encoder that maps a mention
to the name of its code (SapBERT / MultipleNegativesRanking style).

1. Pairs (`LinkPair`: mention text -> code) from public data: the catalog's names of each code other than
   its title (ICD-10-CM inclusion terms, alphabetic index and neoplasm-table paths, Disease Ontology
   synonyms), and the CodiEsp training annotations — the English mention the text pipeline finds in the
   sentence aligned with each gold code's Spanish evidence (`evidence_pairs`). The code side is the code's
   title, the text the dense index embeds. A deterministic slice of codes (`is_heldout`) is kept out of
   every source, for measuring linking on codes the encoder never trained on.
2. `fine_tune`: mention and code name share the weights; contrastive loss over in-batch negatives plus one
   hard negative per pair (a sibling code of the same 3-character category); a step budget and a time
   budget bound it on the CPU; seeds make it deterministic.
3. `linked_encoder`: the fine-tune through a cache folder keyed by a fingerprint of its inputs and
   settings, so a second `medcode train` loads the weights instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from medcode.data.errors import InvalidInputError
from medcode.data.types import Encounter, Mention
from medcode.model.candidates.dense import ENCODER_NAME, Encoder, packaged_encoder_path
from medcode.model.catalog import CM, PCS, CodeCatalog, Knowledge
from medcode.model.runtime import TRAINING_PRECISION, Runtime

log = logging.getLogger(__name__)

CATALOG_KINDS = ("inclusion", "index", "neoplasm", "synonym")
"""Catalog term kinds that become (mention -> code) pairs (titles are the code side)."""
LINKED_PREFIX = "linked-"


@dataclass(frozen=True, slots=True)
class LinkPair:
    mention: str
    system: str
    code: str
    source: str
    """"inclusion", "index", "neoplasm", "synonym" or "codiesp"."""


@dataclass(frozen=True)
class LinkConfig:
    """How the encoder is fine-tuned (stored with the cached weights; part of the cache key)."""

    steps: int = 240
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup: float = 0.1
    scale: float = 20.0
    """Inverse temperature of the contrastive softmax (cosine * scale)."""
    hard_negatives: bool = True
    """One sibling (same 3-character category) of each pair's code as an extra negative."""
    codiesp_share: float = 0.3
    """Share of each batch drawn from the CodiEsp pairs (when there are any)."""
    max_length: int = 24
    frozen_layers: int = 2
    """The embeddings and this many lowest transformer layers stay as packaged (a third less backward
    work; the upper layers do the adapting)."""
    threads: int = 1
    """Torch threads while fine-tuning: on a shared 2-core machine one thread runs about three times faster
    than two that wait on each other."""
    heldout_percent: int = 5
    """Codes kept out of training, chosen by a hash of the code (measurement slice)."""
    seed: int = 13
    time_budget_s: float | None = None
    """Stop after this many seconds even before `steps` (None: no limit)."""

    @classmethod
    def for_profile(cls, profile: str, steps: int | None = None, minutes: float | None = None) -> LinkConfig:
        """The settings of a profile ("cpu" or "gpu", `LINK_PROFILES`) with the command line's overrides."""
        base = LINK_PROFILES[profile]
        return replace(
            base,
            steps=steps or base.steps,
            time_budget_s=float(minutes) * 60 if minutes else base.time_budget_s,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


LINK_PROFILES: dict[str, LinkConfig] = {
    "cpu": LinkConfig(),
    "gpu": LinkConfig(
        steps=1200,
        batch_size=256,
        learning_rate=5e-5,
        codiesp_share=0.1,
        max_length=32,
        frozen_layers=0,
    ),
}
"""How the encoder is fine-tuned where it runs: "cpu" fits a 2-core machine in minutes (240 steps of 32 pairs,
the embeddings and two lowest layers frozen, about 8% of the pairs seen once); "gpu" sees every pair about three
times (1,200 steps of 256, all layers trained, the CodiEsp pairs a tenth of each batch so that their ~3,000 are
not repeated dozens of times). Settings chosen before any measurement; part of the cache key, so weights
trained on a GPU are found again by a CPU run with the same profile."""


def default_profile() -> str:
    """ "gpu" where torch sees a CUDA device, else "cpu"."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def is_heldout(code: str, percent: int) -> bool:
    """Deterministic: the code's hash says whether it is in the measurement slice."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"linking-heldout:{code}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def code_names(catalog: CodeCatalog, systems: Iterable[str] = (CM, PCS)) -> dict[tuple[str, str], str]:
    """(system, code) -> title: the code side of every pair (what the dense index embeds)."""
    out: dict[tuple[str, str], str] = {}
    for system in systems:
        for code in catalog.codes(system):
            title = catalog.title(system, code)
            if title:
                out[(system, code)] = title
    return out


def catalog_pairs(
    catalog: CodeCatalog, heldout_percent: int = 0, kinds: Sequence[str] = CATALOG_KINDS
) -> list[LinkPair]:
    """(name -> code) for every ICD-10-CM name other than the title, held-out codes left out."""
    out: list[LinkPair] = []
    wanted = set(kinds)
    for term in catalog.terms(CM):
        if term.kind not in wanted or is_heldout(term.code, heldout_percent):
            continue
        title = catalog.title(CM, term.code)
        text = " ".join(term.text.split())
        if text and text.lower() != title.lower():
            out.append(LinkPair(text, CM, term.code, term.kind))
    return out


def heldout_index_pairs(catalog: CodeCatalog, percent: int, billable_only: bool = True) -> list[LinkPair]:
    """Index terms of the held-out codes (the measurement slice), billable codes only by default."""
    out: list[LinkPair] = []
    for term in catalog.terms(CM):
        if term.kind not in ("index", "neoplasm") or not is_heldout(term.code, percent):
            continue
        info = catalog.info(CM, term.code)
        if info is None or (billable_only and not info.billable):
            continue
        if term.text.lower() != info.title.lower():
            out.append(LinkPair(term.text, CM, term.code, term.kind))
    return out


Extract = Callable[[str, str], list[Mention]]
SYSTEM_OF_TASK = {"diagnosis": CM, "procedure": PCS}


def evidence_pairs(
    encounters: Sequence[Encounter],
    evidence: Mapping[str, Sequence[tuple[str, str, str, int, int]]],
    extract: Extract,
    names: Mapping[tuple[str, str], str],
    encoder: Encoder,
    heldout_percent: int = 0,
    min_similarity: float = 0.3,
) -> list[LinkPair]:
    """(English mention -> gold code) from sentence-level evidence (`training.pipeline.training_evidence`):
    of the text pipeline's mentions inside the evidence sentence, the one whose lexicon concepts name the
    code (or its category), else the one the generic encoder finds most similar to the code's title (at
    least `min_similarity`). Mentions of any assertion count: the gold says the condition is coded."""
    docs = {(e.encounter_id, d.document_id): d.text for e in encounters for d in e.documents}
    wanted: list[tuple[str, str, str, str, int, int]] = []
    for enc_id, items in sorted(evidence.items()):
        for task, code, doc_id, start, end in items:
            system = SYSTEM_OF_TASK.get(task)
            if system is None or (system, code) not in names or is_heldout(code, heldout_percent):
                continue
            if (enc_id, doc_id) in docs:
                wanted.append((enc_id, doc_id, system, code, start, end))
    mentions_of: dict[tuple[str, str], list[Mention]] = {}
    for enc_id, doc_id, *_ in wanted:
        if (enc_id, doc_id) not in mentions_of:
            mentions_of[(enc_id, doc_id)] = extract(docs[(enc_id, doc_id)], doc_id)
    chosen: list[tuple[str, str, str] | None] = []
    undecided: list[tuple[int, list[str], str]] = []
    for enc_id, doc_id, system, code, start, end in wanted:
        inside = [m for m in mentions_of[(enc_id, doc_id)] if start <= m.start and m.end <= end]
        named = [m for m in inside if any(code == c or code.startswith(c) for c in m.concepts)]
        if named:
            chosen.append((max(named, key=lambda m: len(m.text)).text, system, code))
        else:
            chosen.append(None)
            if inside:
                undecided.append((len(chosen) - 1, [m.text for m in inside], names[(system, code)]))
    if undecided:
        texts = sorted({t for _, ms, title in undecided for t in [*ms, title]})
        row = {t: i for i, t in enumerate(texts)}
        vectors = encoder.encode(texts)
        for k, ms, title in undecided:
            sims = vectors[[row[m] for m in ms]] @ vectors[row[title]]
            best = int(np.argmax(sims))
            if sims[best] >= min_similarity:
                _, system, code = wanted[k][1:4]
                chosen[k] = (ms[best], system, code)
    out = sorted(
        {LinkPair(" ".join(c[0].split()), c[1], c[2], "codiesp") for c in chosen if c is not None},
        key=lambda p: (p.code, p.mention),
    )
    log.info("linking pairs from training evidence: %d of %d evidence sentences", len(out), len(wanted))
    return out


# ---------------------------------------------------------------------------------------------- fine-tune


def siblings_by_category(names: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], list[str]]:
    """(system, 3-character category) -> its codes (hard-negative pools)."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for system, code in sorted(names):
        out[(system, code.replace(".", "")[:3])].append(code)
    return out


def _batches(
    pairs: Sequence[LinkPair], config: LinkConfig, rng: np.random.Generator
) -> Iterator[list[LinkPair]]:
    """Endless batches with distinct codes, `codiesp_share` of each from the CodiEsp pairs."""
    corpus = [p for p in pairs if p.source == "codiesp"]
    rest = [p for p in pairs if p.source != "codiesp"]
    n_corpus = round(config.batch_size * config.codiesp_share) if corpus and rest else 0
    if not rest:
        n_corpus = config.batch_size

    def stream(items: list[LinkPair]) -> Iterator[LinkPair]:
        while True:
            for i in rng.permutation(len(items)):
                yield items[int(i)]

    streams = [(stream(corpus), n_corpus), (stream(rest), config.batch_size - n_corpus)]
    while True:
        batch: list[LinkPair] = []
        seen: set[tuple[str, str]] = set()
        for source, n in streams:
            if n <= 0:
                continue
            taken, tries = 0, 0
            while taken < n and tries < 20 * n:
                tries += 1
                p = next(source)
                if (p.system, p.code) not in seen:
                    seen.add((p.system, p.code))
                    batch.append(p)
                    taken += 1
        yield batch


def fine_tune(
    pairs: Sequence[LinkPair],
    names: Mapping[tuple[str, str], str],
    out: Path,
    config: LinkConfig | None = None,
    base: Path | None = None,
    threads: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Fine-tune the encoder at `base` (default: the packaged MiniLM) on `pairs` and write it (float16
    safetensors + tokenizer) to `out`. Runs on `device` (default: "cuda" where torch sees one, else the
    CPU). Returns what happened (steps, seconds, last loss, device)."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    config = config or LinkConfig()
    if not pairs:
        raise ValueError("no linking pairs to fine-tune on")
    hf_logging.disable_progress_bar()
    packaged = base is None
    base = base or packaged_encoder_path()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or config.threads)
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModel.from_pretrained(str(base), local_files_only=True).float().to(device).train()
    frozen = ("embeddings.", *(f"encoder.layer.{i}." for i in range(config.frozen_layers)))
    for param_name, param in model.named_parameters():
        param.requires_grad = not param_name.startswith(frozen)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=0.01
    )
    warmup = max(1, int(config.steps * config.warmup))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, config.steps - warmup))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    family = siblings_by_category(names)

    def embed(texts: list[str]) -> Any:
        batch = tokenizer(
            texts, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt"
        ).to(device)
        return mean_pooled(model, batch)

    started = time.perf_counter()
    losses: list[float] = []
    step = 0
    batches = _batches(pairs, config, rng)
    while step < config.steps:
        if config.time_budget_s is not None and time.perf_counter() - started > config.time_budget_s:
            log.info("linking fine-tune stopped by its time budget after %d steps", step)
            break
        batch = next(batches)
        keys = [(p.system, p.code) for p in batch]
        targets = [names[k] for k in keys]
        negatives: list[str] = []
        negative_keys: list[tuple[str, str]] = []
        if config.hard_negatives:
            in_batch = set(keys)
            for system, code in keys:
                pool = [c for c in family[(system, code.replace(".", "")[:3])] if (system, c) not in in_batch]
                if pool:
                    pick = pool[int(rng.integers(len(pool)))]
                    negatives.append(names[(system, pick)])
                    negative_keys.append((system, pick))
        m = embed([p.mention for p in batch])
        c = embed(targets + negatives)
        logits = config.scale * (m @ c.T)
        # a name equal to the target's own (two codes sharing a title) is not a negative
        target_text = [t.lower() for t in targets]
        all_text = [t.lower() for t in targets + negatives]
        clash = torch.tensor(
            [
                [j != i and all_text[j] == target_text[i] for j in range(len(all_text))]
                for i in range(len(batch))
            ]
        )
        logits = logits.masked_fill(clash.to(device), -1e4)
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch), device=device))
        losses.append(train_step(loss, model, optimizer, scheduler))
        step += 1
        if step % 50 == 0:
            log.info("linking fine-tune: step %d, loss %.3f", step, float(np.mean(losses[-50:])))
    seconds = time.perf_counter() - started
    torch.set_num_threads(previous_threads)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.eval().cpu().half().save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    info = {
        "steps": step,
        "seconds": round(seconds, 1),
        "first_loss": round(float(np.mean(losses[:20])), 4) if losses else None,
        "last_loss": round(float(np.mean(losses[-20:])), 4) if losses else None,
        "pairs": len(pairs),
        "config": config.to_json(),
        "base": ENCODER_NAME if packaged else str(base),
        "device": torch.cuda.get_device_name(device) if str(device).startswith("cuda") else "cpu",
    }
    (tmp / "linking.json").write_text(json.dumps(info, indent=1, sort_keys=True), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    log.info("linking encoder fine-tuned: %d steps in %.0f s", step, seconds)
    return info


def mean_pooled(model: Any, batch: Any) -> Any:
    """The encoder's vectors of a tokenized batch as the product reads them: the mean of the real tokens'
    last hidden states, L2-normalised (on the batch's device; gradients flow when enabled)."""
    import torch

    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def train_step(loss: Any, model: Any, optimizer: Any, scheduler: Any) -> float:
    """One optimiser step on `loss`: gradients clipped at norm 1, the schedule advanced; the loss's value."""
    import torch

    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


# ---------------------------------------------------------------------------------------------- cached


def fingerprint(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class LinkingJob:
    """One fine-tune, named by its inputs: `key` is the cache folder's name (`cache/linking/<key>`); the
    pairs are built by `make_pairs` only when the weights are not in the cache."""

    key: str
    make_pairs: Callable[[], list[LinkPair]]
    names: Mapping[tuple[str, str], str]
    config: LinkConfig

    @classmethod
    def of(
        cls,
        key_parts: Sequence[str],
        make_pairs: Callable[[], list[LinkPair]],
        names: Mapping[tuple[str, str], str],
        config: LinkConfig,
    ) -> LinkingJob:
        key = fingerprint([*key_parts, json.dumps(config.to_json(), sort_keys=True)])
        return cls(key, make_pairs, names, config)

    def folder(self, root: Path) -> Path:
        return Path(root) / "linking" / self.key

    def cached(self, root: Path) -> bool:
        folder = self.folder(root)
        return (folder / "linking.json").is_file() and (folder / "model.safetensors").is_file()


def linked_encoder(
    job: LinkingJob,
    cache_dir: Path | None,
    work_dir: Path | None = None,
    runtime: Runtime | None = None,
    needs_gpu: bool = False,
) -> Encoder:
    """The fine-tuned encoder of `job`: from `cache_dir/linking/<key>` when it is there, else trained now
    and kept there; it encodes with `runtime`'s threads and precision (default: the precision training stores
    vectors in). `needs_gpu`: a fine-tune too long for a CPU (the gpu profile without a time budget) is
    refused with a clear error where torch sees no CUDA device and the weights are not cached."""
    root = cache_dir if cache_dir is not None else work_dir
    if root is None:
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="medcode-linking-"))
    folder = job.folder(root)
    if job.cached(root):
        log.info("linking encoder %s from the cache", job.key)
    else:
        if needs_gpu and default_profile() != "gpu":
            raise InvalidInputError(
                "the gpu profile of the linked encoder needs a CUDA device or its weights in the cache "
                "(benchmarks/gpu_linking.py); use --encoder-profile cpu, or bound it with --encoder-minutes"
            )
        pairs = job.make_pairs()
        log.info(
            "fine-tuning the linking encoder on %d pairs (%d steps at most)", len(pairs), job.config.steps
        )
        fine_tune(pairs, job.names, folder, job.config)
    runtime = runtime or Runtime(precision=TRAINING_PRECISION)
    return Encoder(
        path=folder, name=f"{LINKED_PREFIX}{job.key}", precision=runtime.precision, threads=runtime.threads
    )


def trained_info(encoder: Encoder) -> dict[str, Any]:
    """What `fine_tune` recorded beside the weights of a linked encoder ({} for the generic one)."""
    if encoder.path is None or not (encoder.path / "linking.json").is_file():
        return {}
    data: dict[str, Any] = json.loads((encoder.path / "linking.json").read_text(encoding="utf-8"))
    return data


def linking_job(
    knowledge: Knowledge,
    train: Sequence[Encounter],
    evidence: Mapping[str, Sequence[tuple[str, str, str, int, int]]] | None,
    config: LinkConfig,
    *,
    lexicon_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> LinkingJob:
    """The fine-tune of a default-preset fit: catalog names of `knowledge` plus the training notes' evidence
    mentions (only `train`: never the split a model is evaluated on)."""
    from medcode.model.catalog import build_catalog
    from medcode.model.pack import fingerprint_texts
    from medcode.training.default import training_fingerprint

    catalog = build_catalog(knowledge)
    names = code_names(catalog)
    evidence = evidence or {}
    evidence_key = fingerprint_texts(
        [f"{k}\t{t}\t{c}\t{d}\t{s}\t{e}" for k in sorted(evidence) for t, c, d, s, e in sorted(evidence[k])]
    )
    key_parts = [catalog.fingerprint, training_fingerprint(train), evidence_key, ENCODER_NAME]

    def make_pairs() -> list[LinkPair]:
        pairs = catalog_pairs(catalog, config.heldout_percent)
        if evidence:
            from medcode.model.text.sources import full_pipeline

            pipeline = full_pipeline(lexicon_dir, cache_dir)
            pairs += evidence_pairs(
                train, evidence, pipeline.extract, names, Encoder(), heldout_percent=config.heldout_percent
            )
        return pairs

    return LinkingJob.of(key_parts, make_pairs, names, config)
