"""Probe: would a cross-encoder reranker lift the trained default's ranking? (issue 16, next-step question)

The trained default's ranker scores each (note, code) pair from 40 features; none of them reads the evidence
sentence and the code's title together. This probe measures whether a MiniLM cross-encoder that does, trained on
CodiEsp train only, reorders the default's top K better, before anything is built into the product:

1. `export` (here): a trained pack's top K diagnosis codes for every train and dev note, each with its evidence
   (the mention and the sentence around it), the code's title and whether it is gold;
2. `train` (on a GPU machine with torch and transformers; carry pydantic's wheels as for `gpu_linking.py`): the
   packaged MiniLM with a one-logit head, fine-tuned on the train notes' pairs (binary cross-entropy), then the
   dev pairs scored;
3. `score` (here): dev MAP of the pack's order, of the cross-encoder's order, and of their rank average (Borda:
   no weight fitted, so nothing is tuned on dev), each on the top K followed by the rest of the pack's ranking.

    .venv/bin/python benchmarks/rerank_probe.py export --pack PACK --data-dir ../shared/datasets --out gpu/rerank
    python3 benchmarks/rerank_probe.py train gpu/rerank --base gpu/base --out "$OUT"          # on the GPU machine
    .venv/bin/python benchmarks/rerank_probe.py score gpu/rerank --scores /work/.device/N/scores.json

The train notes' candidate lists come from a pack fitted on them (in-sample), so they are the pack's hard
negatives, not an unbiased sample; the dev figures are what counts.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("rerank-probe")
TOP_K = 30


def _sentence(text: str, start: int, end: int, width: int = 300) -> str:
    """The sentence around [start, end) (split at '.', newline), at most `width` characters."""
    left = max(text.rfind(".", 0, start), text.rfind("\n", 0, start)) + 1
    right_dot, right_nl = text.find(".", end), text.find("\n", end)
    rights = [r for r in (right_dot, right_nl) if r >= 0]
    right = min(rights) + 1 if rights else len(text)
    return " ".join(text[left:right].split())[:width]


def export(args: argparse.Namespace) -> int:
    from medcode.data.codiesp import read_split
    from medcode.model.pack import load_pack
    from medcode.model.runtime import Runtime

    coder = load_pack(args.pack, Runtime(precision="float32"))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    for split in ("train", "dev"):
        notes = []
        encounters = read_split(args.data_dir / "codiesp", split).encounters[: args.limit]
        started = time.perf_counter()
        for encounter in encounters:
            text = {d.document_id: d.text for d in encounter.documents}
            gold = set(encounter.gold.diagnosis) if encounter.gold else set()
            ranked = coder.suggest(encounter).ranked("diagnosis")
            items = []
            for s in ranked[: args.top_k]:
                ev = s.evidence[0] if s.evidence else None
                mention = ev.text if ev else ""
                sentence = _sentence(text.get(ev.document_id, ""), ev.start, ev.end) if ev else ""
                items.append(
                    {
                        "code": s.code,
                        "title": s.description,
                        "mention": mention,
                        "sentence": sentence,
                        "gold": s.code in gold,
                    }
                )
            notes.append(
                {
                    "id": encounter.encounter_id,
                    "gold": sorted(gold),
                    "items": items,
                    "rest": [s.code for s in ranked[args.top_k :]],
                }
            )
        log.info("%s: %d notes in %.0f s", split, len(notes), time.perf_counter() - started)
        rows[split] = notes
    with gzip.open(out / "pairs.json.gz", "wt", encoding="utf-8") as handle:
        json.dump(rows, handle)
    return 0


def _text_a(item: dict[str, Any]) -> str:
    """The evidence as the cross-encoder reads it: the sentence, led by the mention when it is shorter."""
    if not item["mention"] or (item["mention"] in item["sentence"] and len(item["mention"]) > 60):
        return str(item["sentence"])
    return f"{item['mention']} | {item['sentence']}"


def train(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from medcode.training.linking import train_step

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(13)
    with gzip.open(args.folder / "pairs.json.gz", "rt", encoding="utf-8") as handle:
        rows = json.load(handle)
    tokenizer = AutoTokenizer.from_pretrained(str(args.base), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(args.base), num_labels=1, local_files_only=True
    )
    model = model.float().to(device).train()
    torch.set_num_threads(args.threads)
    frozen = ("bert.embeddings.", *(f"bert.encoder.layer.{i}." for i in range(args.frozen_layers)))
    for name, param in model.named_parameters():
        param.requires_grad = not name.startswith(frozen)
    pairs = [(_text_a(i), i["title"], float(i["gold"])) for n in rows["train"] for i in n["items"]]
    rng = np.random.default_rng(13)
    if args.negatives is not None:  # a CPU-sized run: every positive, a seeded sample of the negatives
        negatives = [p for p in pairs if not p[2]]
        keep = rng.choice(len(negatives), min(args.negatives, len(negatives)), replace=False)
        pairs = [p for p in pairs if p[2]] + [negatives[int(i)] for i in keep]
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01
    )
    steps = args.epochs * ((len(pairs) + args.batch - 1) // args.batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    started, step, losses = time.perf_counter(), 0, []
    for _ in range(args.epochs):
        order = rng.permutation(len(pairs))
        for b in range(0, len(order), args.batch):
            batch = [pairs[int(i)] for i in order[b : b + args.batch]]
            enc = tokenizer(
                [a for a, _, _ in batch],
                [t for _, t, _ in batch],
                padding=True,
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            ).to(device)
            logits = model(**enc).logits.squeeze(-1)
            target = torch.tensor([y for *_, y in batch], device=device)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            losses.append(train_step(loss, model, optimizer, scheduler))
            step += 1
            if step % 20 == 0:
                log.info("step %d/%d, loss %.4f", step, steps, float(np.mean(losses[-20:])))
    seconds = round(time.perf_counter() - started, 1)
    model.eval()
    scores: dict[str, list[float]] = {}
    with torch.inference_mode():
        for note in rows["dev"]:
            items = note["items"]
            if not items:
                scores[note["id"]] = []
                continue
            enc = tokenizer(
                [_text_a(i) for i in items],
                [i["title"] for i in items],
                padding=True,
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            ).to(device)
            scores[note["id"]] = model(**enc).logits.squeeze(-1).float().cpu().tolist()
    report = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "train_pairs": len(pairs),
        "positives": int(sum(y for *_, y in pairs)),
        "steps": step,
        "seconds": seconds,
        "first_loss": round(float(np.mean(losses[:50])), 4),
        "last_loss": round(float(np.mean(losses[-50:])), 4),
        "settings": {
            k: v
            for k, v in vars(args).items()
            if k in ("epochs", "batch", "lr", "max_length", "frozen_layers", "negatives", "threads")
        },
        "scores": scores,
    }
    (args.out / "scores.json").write_text(json.dumps(report), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "scores"}, indent=1))
    return 0


def score(args: argparse.Namespace) -> int:
    from medcode.evaluation.metrics import mean_average_precision

    with gzip.open(args.folder / "pairs.json.gz", "rt", encoding="utf-8") as handle:
        dev = json.load(handle)["dev"]
    report = json.loads(args.scores.read_text(encoding="utf-8"))
    golds: list[list[str]] = []
    orders: dict[str, list[list[str]]] = {"pack": [], "cross-encoder": [], "rank average": []}
    for note in dev:
        codes = [i["code"] for i in note["items"]]
        ce = np.asarray(report["scores"][note["id"]], dtype=float)
        by_ce = [codes[int(j)] for j in np.argsort(-ce, kind="stable")] if len(codes) else []
        ce_rank = {c: r for r, c in enumerate(by_ce)}
        borda = sorted(codes, key=lambda c: (codes.index(c) + ce_rank[c], codes.index(c)))
        golds.append(note["gold"])
        orders["pack"].append(codes + note["rest"])
        orders["cross-encoder"].append(by_ce + note["rest"])
        orders["rank average"].append(borda + note["rest"])
    print(f"| dev, top {TOP_K} reordered | diagnosis MAP |")
    print("|---|---|")
    for name, rankings in orders.items():
        print(f"| {name} | {mean_average_precision(rankings, golds):.4f} |")
    print({k: v for k, v in report.items() if k != "scores"})
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("export")
    p.add_argument("--pack", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--top-k", type=int, default=TOP_K)
    p.add_argument("--limit", type=int, default=None, help="first N notes of each split (a quick check)")
    p.set_defaults(run=export)
    p = sub.add_parser("train")
    p.add_argument("folder", type=Path)
    p.add_argument(
        "--base", type=Path, required=True, help="the MiniLM folder (gpu_linking.py export's base/)"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument(
        "--frozen-layers", type=int, default=0, help="the embeddings and this many lowest layers frozen"
    )
    p.add_argument(
        "--negatives", type=int, default=None, help="a seeded sample of N negatives (default: all)"
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (on the CPU)")
    p.set_defaults(run=train)
    p = sub.add_parser("score")
    p.add_argument("folder", type=Path)
    p.add_argument("--scores", type=Path, required=True)
    p.set_defaults(run=score)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
