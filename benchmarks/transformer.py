"""Benchmarks of the transformer preset (figures go to benchmarks/transformer.md).

    python benchmarks/transformer.py train-step [--device cpu] [--batch-size 4] [--steps 5]
    python benchmarks/transformer.py infer [--device cpu] [--pack DIR] [--notes 40]
    python benchmarks/transformer.py codiesp [--device cpu] [--epochs 1] [--max-tokens 512] [--out DIR]

Notes are CodiEsp notes (`--data-dir`, default `$MEDCODE_DATA_DIR/codiesp`), or synthetic notes of
CodiEsp size (~450 tokens) when the data is absent. Every run prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from medcode.data.types import Document, Encounter, Gold
from medcode.model.transformer.config import TransformerConfig
from medcode.settings import get_settings

log = logging.getLogger("benchmarks.transformer")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out: dict[str, Any] = {
        "benchmark": args.command,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
    }
    out.update(args.func(args))
    print(json.dumps(out, sort_keys=True))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, helptext in (
        ("train-step", bench_train_step, "seconds per optimisation step on CodiEsp-size notes"),
        ("infer", bench_infer, "notes per second of TransformerCoder.suggest"),
        ("codiesp", bench_codiesp, "train on CodiEsp train, measure on dev, save the pack"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.set_defaults(func=func)
        p.add_argument("--device", default="cpu")
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
        p.add_argument("--data-dir", type=Path, default=None, help="the codiesp folder")
        p.add_argument("--max-tokens", type=int, default=1024)
        p.add_argument("--chunk-tokens", type=int, default=256)
        p.add_argument("--num-layers", type=int, default=None)
    sub.choices["train-step"].add_argument("--batch-size", type=int, default=4)
    sub.choices["train-step"].add_argument("--steps", type=int, default=5)
    sub.choices["train-step"].add_argument("--labels", type=int, default=2000)
    sub.choices["infer"].add_argument(
        "--pack", type=Path, default=None, help="a trained pack (default: untrained)"
    )
    sub.choices["infer"].add_argument("--notes", type=int, default=40)
    sub.choices["infer"].add_argument("--labels", type=int, default=2000)
    sub.choices["infer"].add_argument("--batch-size", type=int, default=1, help="notes per forward pass")
    c = sub.choices["codiesp"]
    c.add_argument("--epochs", type=int, default=1)
    c.add_argument("--batch-size", type=int, default=8)
    c.add_argument("--encoder-lr", type=float, default=5e-5)
    c.add_argument("--head-lr", type=float, default=1e-3)
    c.add_argument("--freeze-layers", type=int, default=0)
    c.add_argument("--min-code-count", type=int, default=1)
    c.add_argument("--label-sample", type=int, default=None, help="labels scored per training step")
    c.add_argument("--no-retrieval", action="store_true")
    c.add_argument(
        "--skip-later-encounters", action="store_true", help="retrieval pool without D/S 7th chars"
    )
    c.add_argument(
        "--mentions",
        choices=("default", "clause", "none"),
        default="default",
        help="mention extractor: the text pipeline (default), its clause-based fallback, or none",
    )
    c.add_argument("--limit", type=int, default=None, help="use only the first N train notes")
    c.add_argument("--out", type=Path, default=None, help="save the pack here")
    return parser


# -- notes -------------------------------------------------------------------------------------------------------


def _codiesp_dir(arg: Path | None) -> Path | None:
    if arg is not None:
        return arg
    base = get_settings().data_dir
    return base / "codiesp" if base is not None and (base / "codiesp").is_dir() else None


def _notes(data_dir: Path | None, split: str, n: int | None) -> list[Encounter]:
    if data_dir is not None:
        from medcode.data.corpora import load_corpus

        encounters = load_corpus("codiesp", data_dir, split)
        return encounters[:n] if n else encounters
    return _synthetic_notes(n or 40)


def _synthetic_notes(n: int) -> list[Encounter]:
    """CodiEsp-size notes (~40 sentences, ~450 tokens) built from ICD-10-CM titles."""
    from medcode.data.icd10cm import load_icd10cm

    titles = [load_icd10cm()[c].title for c in load_icd10cm().billable_codes()[::97]]
    rng = random.Random(0)
    out = []
    for i in range(n):
        sentences = [
            f"The patient presented with {rng.choice(titles).lower()} and was admitted." for _ in range(36)
        ]
        out.append(
            Encounter(
                encounter_id=f"bench{i}",
                documents=[Document(document_id="d1", text="\n".join(sentences))],
                gold=Gold(diagnosis=[]),
            )
        )
    return out


def _config(args: argparse.Namespace, **overrides: Any) -> TransformerConfig:
    return replace(
        TransformerConfig(
            chunk_tokens=args.chunk_tokens,
            max_tokens=args.max_tokens,
            num_layers=args.num_layers,
            num_threads=args.threads,
        ).for_device(args.device),
        **overrides,
    )


def _untrained_coder(config: TransformerConfig, n_labels: int, device: str) -> Any:
    from medcode.data.icd10cm import load_icd10cm
    from medcode.model.transformer.coder import TransformerCoder
    from medcode.model.transformer.codes import Label
    from medcode.model.transformer.network import LabelAttentionNet, load_encoder

    icd = load_icd10cm()
    codes = icd.billable_codes()[:: max(1, len(icd.billable_codes()) // n_labels)][:n_labels]
    labels = [Label("ICD-10-CM", c, icd[c].title) for c in codes]
    encoder, tokenizer = load_encoder(config.encoder_path, config.num_layers)
    net = LabelAttentionNet(encoder, len(labels))
    return TransformerCoder(
        net,
        tokenizer,
        labels,
        config,
        version="bench",
        code_set_version=icd.version,
        device=device,
        mention_extractor=lambda e: [],
    )


# -- benchmarks ----------------------------------------------------------------------------------------------------


def _layers(coder: Any) -> int:
    encoder: Any = coder.net.encoder
    return int(encoder.config.num_hidden_layers)


def bench_train_step(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from medcode.training.transformer_train import Trainer

    config = _config(args, batch_size=args.batch_size, epochs=1, retrieval=True)
    notes = _notes(_codiesp_dir(args.data_dir), "train", args.batch_size * (args.steps + 1))
    coder = _untrained_coder(config, args.labels, args.device)
    labels = coder.labels
    for i, e in enumerate(notes):  # give each note a few labels so the losses are realistic
        e.gold = Gold(diagnosis=[labels[(i * 7 + k) % len(labels)].code for k in range(5)])
    from medcode.data.codesystems import CodeSets

    trainer = Trainer(coder, config, args.device, code_sets=CodeSets())  # diagnosis labels only
    started = time.perf_counter()
    trainer.fit(notes[: args.batch_size], labels)  # warm-up step (allocations, tokenizer)
    warm = time.perf_counter() - started
    started = time.perf_counter()
    history = trainer.fit(notes[args.batch_size :], labels)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = sum(len(coder.encode(e).positions) for e in notes[args.batch_size :])
    return {
        "batch_size": args.batch_size,
        "steps": history.steps,
        "labels": len(labels),
        "warmup_seconds": round(warm, 2),
        "seconds_per_step": round(seconds / max(history.steps, 1), 3),
        "notes_per_second": round(len(notes[args.batch_size :]) / seconds, 2),
        "tokens_per_note": round(tokens / len(notes[args.batch_size :])),
        "layers": _layers(coder),
    }


def bench_infer(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    notes = _notes(_codiesp_dir(args.data_dir), "dev", args.notes)
    if args.pack is not None:
        from medcode.model.transformer import load_pack

        coder = load_pack(args.pack, device=args.device)
        coder.mention_extractor = lambda e: []  # time the model, not the text pipeline
    else:
        coder = _untrained_coder(_config(args, retrieval=False), args.labels, args.device)
    started = time.perf_counter()
    index_size = len(coder.title_index()) if coder.config.retrieval else 0
    index_seconds = time.perf_counter() - started
    coder.suggest(notes[0])  # warm-up
    latencies = []
    started = time.perf_counter()
    if args.batch_size > 1:
        for s in range(0, len(notes), args.batch_size):
            t = time.perf_counter()
            group = notes[s : s + args.batch_size]
            for e, scores in zip(group, coder.score_many(group, batch_size=args.batch_size), strict=True):
                coder.result_from_scores(e, scores)
            latencies.append((time.perf_counter() - t) / len(group))
    else:
        for e in notes:
            t = time.perf_counter()
            coder.suggest(e)
            latencies.append(time.perf_counter() - t)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "notes": len(notes),
        "labels": len(coder.labels),
        "layers": _layers(coder),
        "retrieval_codes": index_size,
        "title_index_seconds": round(index_seconds, 2),
        "notes_per_second": round(len(notes) / seconds, 2),
        "latency_p50_ms": round(1000 * statistics.median(latencies), 1),
        "latency_p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
        "mentions": "none (text pipeline not timed)",
        "pack": str(args.pack) if args.pack else None,
    }


def _extractor(name: str) -> Any:
    if name == "default":
        return None
    if name == "none":
        return lambda encounter: []
    from medcode.model.mentions import clause_mentions

    return lambda encounter: [m for d in encounter.documents for m in clause_mentions(d.text, d.document_id)]


def bench_codiesp(args: argparse.Namespace) -> dict[str, Any]:
    from medcode.training.transformer_train import train_transformer

    data_dir = _codiesp_dir(args.data_dir)
    if data_dir is None:
        raise SystemExit("codiesp needs --data-dir or MEDCODE_DATA_DIR")
    train = _notes(data_dir, "train", args.limit)
    dev = _notes(data_dir, "dev", None)
    config = _config(
        args,
        epochs=args.epochs,
        batch_size=args.batch_size,
        encoder_lr=args.encoder_lr,
        head_lr=args.head_lr,
        freeze_layers=args.freeze_layers,
        min_code_count=args.min_code_count,
        train_label_sample=args.label_sample,
        retrieval=not args.no_retrieval,
        retrieval_skip_later_encounters=args.skip_later_encounters,
        extra={"command": " ".join(sys.argv)},
    )
    started = time.perf_counter()
    from medcode.data.codesystems import load_code_sets

    coder = train_transformer(
        train,
        dev,
        config,
        device=args.device,
        code_sets=load_code_sets(data_dir.parent),  # the datasets folder around codiesp/
        mention_extractor=_extractor(args.mentions),
    )
    total = time.perf_counter() - started
    if args.out is not None:
        from medcode.model.transformer import save_pack

        save_pack(coder, args.out)
    return {"total_seconds": round(total, 1), "pack": str(args.out) if args.out else None, **coder.metrics}


if __name__ == "__main__":
    sys.exit(main())
