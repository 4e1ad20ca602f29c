"""The linked encoder's profiles fine-tuned on a GPU machine that has torch but not the rest of the stack.

`medcode train --encoder linked` fine-tunes the encoder itself, on a GPU where torch sees one. A lent GPU
machine here has torch and transformers but not spaCy or the datasets, so the fine-tune travels in three steps:

1. `export` (here, with the datasets): the pairs, code names and cache keys exactly as `medcode train
   --encoder linked --encoder-profile P` builds them (`training.linking.linking_job`), the linking benchmark's
   queries and targets (`benchmarks/linking.py`: held-out index terms, CodiEsp dev evidence), and the packaged
   MiniLM in float16 (the travelling tree is limited to 64 MiB);
2. `train` (there): each profile fine-tuned on the GPU (`training.linking.fine_tune`), linking measured for the
   generic encoder and each profile, and one profile's weights written as a split tar;
3. `install` (here): the weights put under `MEDCODE_HOME/cache/linking/<key>`, where `medcode train --encoder
   linked --encoder-profile P` finds them instead of training again.

    .venv/bin/python benchmarks/gpu_linking.py export --data-dir ../shared/datasets --out gpu
    python3 benchmarks/gpu_linking.py train gpu --out "$OUT" --return-profile gpu      # on the GPU machine
    .venv/bin/python benchmarks/gpu_linking.py install /work/.device/<files_at> --cache "$MEDCODE_HOME/cache"

Dev is only measured here, never trained on or chosen by.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from linking import accuracy, ranks

from medcode.training.linking import LinkConfig, LinkPair, fine_tune, mean_pooled

log = logging.getLogger("gpu-linking")
CHUNK = "encoder.tar.part-"


def _write_gz(path: Path, data: Any) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(data, handle)


def _read_gz(path: Path) -> Any:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def export(args: argparse.Namespace) -> int:
    from linking import billable_targets, read_queries, sample
    from safetensors.torch import load_file, save_file

    from medcode.model.candidates.dense import packaged_encoder_path
    from medcode.model.catalog import CM, build_catalog, knowledge_from
    from medcode.settings import get_settings
    from medcode.training.linking import LINK_PROFILES, linking_job
    from medcode.training.options import TrainingOptions
    from medcode.training.pipeline import load_splits, training_evidence

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    options = TrainingOptions(dataset="codiesp", data_dir=args.data_dir / "codiesp", encoder="linked")
    train, _ = load_splits(options)
    evidence = training_evidence(options, train)
    root = options.knowledge_root(args.data_dir) or args.data_dir
    knowledge = knowledge_from(root)
    cache_dir = get_settings().cache_dir
    jobs = {
        profile: linking_job(
            knowledge,
            [e for e in train if e.gold is not None],
            evidence,
            config,
            lexicon_dir=root,
            cache_dir=cache_dir,
        )
        for profile, config in LINK_PROFILES.items()
    }
    first = next(iter(jobs.values()))
    pairs = first.make_pairs()  # the same pairs for every profile (they share `heldout_percent`)
    assert len({job.config.heldout_percent for job in jobs.values()}) == 1
    _write_gz(out / "pairs.json.gz", [[p.mention, p.system, p.code, p.source] for p in pairs])
    _write_gz(out / "names.json.gz", [[s, c, t] for (s, c), t in sorted(first.names.items())])
    (out / "jobs.json").write_text(
        json.dumps({p: {"key": j.key, "config": j.config.to_json()} for p, j in jobs.items()}, indent=1),
        encoding="utf-8",
    )
    catalog = build_catalog(knowledge)
    billable = billable_targets(catalog)
    heldout, dev = read_queries(root, catalog, set(billable), first.config.heldout_percent, None)
    heldout, codes = sample(heldout, dev, billable, args.max_heldout, args.targets)
    _write_gz(
        out / "queries.json.gz",
        {"heldout": heldout, "dev": dev, "codes": codes, "titles": [catalog.title(CM, c) for c in codes]},
    )
    base = out / "base"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(packaged_encoder_path(), base, ignore=shutil.ignore_patterns("model.safetensors"))
    tensors = load_file(str(packaged_encoder_path() / "model.safetensors"))
    save_file({k: v.half() for k, v in tensors.items()}, str(base / "model.safetensors"), {"format": "pt"})
    log.info(
        "exported %d pairs, %d held-out and %d dev queries, %d targets",
        len(pairs),
        len(heldout),
        len(dev),
        len(codes),
    )
    return 0


def _embedder(folder: Path, device: str) -> Any:
    """The encoder at `folder` as the product runs it (mean pooling, 128 tokens, L2-normalised)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).float().to(device).eval()

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), 512):
                batch = tokenizer(
                    texts[start : start + 512],
                    padding=True,
                    truncation=True,
                    max_length=128,
                    return_tensors="pt",
                ).to(device)
                out.append(mean_pooled(model, batch).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)

    return embed


def measure(folder: Path, queries: dict[str, Any], device: str) -> dict[str, dict[str, float]]:
    """acc@1 / acc@10 on held-out index terms, dev evidence mentions and whole dev sentences."""
    embed = _embedder(folder, device)
    row_of = {c: i for i, c in enumerate(queries["codes"])}
    targets = embed(queries["titles"])
    heldout, dev = queries["heldout"], queries["dev"]
    figures = {
        "heldout": accuracy(ranks(embed([m for m, _ in heldout]), targets, [row_of[c] for _, c in heldout]))
    }
    gold = [row_of[c] for *_, c in dev]
    flat = [m for _, ms, _ in dev for m in ms]
    owner = [i for i, (_, ms, _) in enumerate(dev) for _ in ms]
    best = np.full(len(dev), 10, dtype=int)
    for i, r in zip(owner, ranks(embed(flat), targets, [gold[i] for i in owner]), strict=True):
        best[i] = min(best[i], int(r))
    figures["dev-mention"] = accuracy(best)
    figures["dev-sentence"] = accuracy(ranks(embed([s for s, _, _ in dev]), targets, gold))
    return figures


def train(args: argparse.Namespace) -> int:
    import torch

    folder: Path = args.folder
    out: Path = args.out
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False  # the CPU's float32 arithmetic, not TF32's shorter mantissa
    pairs = [LinkPair(*row) for row in _read_gz(folder / "pairs.json.gz")]
    names = {(s, c): t for s, c, t in _read_gz(folder / "names.json.gz")}
    jobs = json.loads((folder / "jobs.json").read_text(encoding="utf-8"))
    queries = _read_gz(folder / "queries.json.gz")
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "pairs": len(pairs),
    }

    def save_report() -> None:
        (out / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")

    started = time.perf_counter()
    report["generic"] = measure(folder / "base", queries, device)
    report["generic_seconds"] = round(time.perf_counter() - started, 1)
    save_report()
    work = Path("/tmp/gpu-linking")
    for profile in args.profiles:
        job = jobs[profile]
        config = LinkConfig(**job["config"])
        weights = work / job["key"]
        info = fine_tune(pairs, names, weights, config, base=folder / "base", device=device)
        started = time.perf_counter()
        report[profile] = {"key": job["key"], "fine_tune": info, "linking": measure(weights, queries, device)}
        report[profile]["measure_seconds"] = round(time.perf_counter() - started, 1)
        save_report()
        log.info("%s: %s", profile, json.dumps(report[profile]["linking"]))
        if profile == args.return_profile:
            archive = subprocess.run(
                ["tar", "cf", "-", "-C", str(weights), "."], check=True, capture_output=True
            ).stdout
            size = 15 * 2**20
            for n, start in enumerate(range(0, len(archive), size)):
                (out / f"{CHUNK}{n:02d}").write_bytes(archive[start : start + size])
            report["returned"] = {"profile": profile, "key": job["key"], "bytes": len(archive)}
            save_report()
    print(json.dumps(report, indent=1, sort_keys=True))
    return 0


def install(args: argparse.Namespace) -> int:
    report = json.loads((args.files / "report.json").read_text(encoding="utf-8"))
    returned = report["returned"]
    parts = sorted(args.files.glob(f"{CHUNK}*"))
    archive = b"".join(p.read_bytes() for p in parts)
    if len(archive) != returned["bytes"]:
        print(
            f"gpu_linking: the tar is {len(archive)} bytes, the report says {returned['bytes']}",
            file=sys.stderr,
        )
        return 1
    target = args.cache / "linking" / returned["key"]
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    subprocess.run(["tar", "xf", "-", "-C", str(tmp)], input=archive, check=True)
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    print(f"{returned['profile']} profile's encoder installed at {target}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("export", help="pairs, keys, queries and the float16 base into a folder (here)")
    p.add_argument("--data-dir", type=Path, required=True, help="datasets folder (codiesp/, icd10cm/, ...)")
    p.add_argument("--out", type=Path, default=Path("gpu"))
    p.add_argument("--targets", type=int, default=10000, help="as benchmarks/linking.py --targets")
    p.add_argument("--max-heldout", type=int, default=1500, help="as benchmarks/linking.py --max-heldout")
    p.set_defaults(run=export)
    p = sub.add_parser("train", help="fine-tune and measure each profile (on the GPU machine)")
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--profiles", nargs="+", default=["cpu", "gpu"])
    p.add_argument("--return-profile", default="gpu", help="whose weights come back (one: 45 MB)")
    p.set_defaults(run=train)
    p = sub.add_parser("install", help="put returned weights into a cache folder (here)")
    p.add_argument("files", type=Path, help="the folder the train step's files were fetched to")
    p.add_argument("--cache", type=Path, required=True, help="MEDCODE_HOME/cache")
    p.set_defaults(run=install)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
