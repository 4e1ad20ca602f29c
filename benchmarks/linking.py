"""Linking on its own: mention -> ICD-10-CM code, generic encoder vs the linked one (training.linking).

Targets: the titles of the billable ICD-10-CM codes among those the default preset embeds for dense
retrieval (`model.trained.coder.dense_worthy`: no external causes, no left/right/bilateral variants), one
name per code; the code vectors come through the cache folder a `medcode train` filled (so the linked
encoder's are not computed twice on a shared CPU). Queries:

- `heldout`: alphabetic-index and neoplasm-table terms of the codes `training.linking.is_heldout` keeps out
  of the linked encoder's training (billable codes only);
- `dev-mention`: CodiEsp DEV diagnosis evidence (Spanish offsets aligned to the English sentence,
  `training.codiesp_evidence`), gold codes among the targets; a hit at k when any of the text pipeline's
  mentions inside the evidence sentence has the gold code in its top k (each encoder its own best mention);
- `dev-sentence`: the same evidence with the whole English sentence as the query.

Dev is only measured here, never trained on. Writes a JSON of the figures (`--out`).

    MEDCODE_DATA_DIR=/work/shared/datasets .venv/bin/python benchmarks/linking.py \
        --linked ~/.medcode/cache/linking/<key> --out /tmp/linking.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from medcode.model.candidates.dense import Encoder, as_stored, build_code_index
from medcode.model.catalog import CM, CodeCatalog, build_catalog, knowledge_from
from medcode.training.linking import LINKED_PREFIX, LinkConfig, heldout_index_pairs

# The text pipeline, the CodiEsp reader and the settings are imported where they are used: `ranks` and
# `accuracy` are also read by benchmarks/gpu_linking.py on a GPU machine that has only torch and numpy.

log = logging.getLogger("linking-benchmark")


def ranks(queries: np.ndarray, targets: np.ndarray, gold: list[int], k: int = 10) -> np.ndarray:
    """Rank (0 = first) of each query's gold target, capped at k (k: not in the top k)."""
    import torch

    out = np.full(len(queries), k, dtype=int)
    q = torch.from_numpy(queries)
    t = torch.from_numpy(targets)
    for start in range(0, len(queries), 512):
        sims = q[start : start + 512] @ t.T
        top = torch.topk(sims, k, dim=1).indices.numpy()
        for i, row in enumerate(top):
            hit = np.nonzero(row == gold[start + i])[0]
            if len(hit):
                out[start + i] = int(hit[0])
    return out


def accuracy(r: np.ndarray) -> dict[str, float]:
    return {"n": len(r), "acc@1": float(np.mean(r < 1)), "acc@10": float(np.mean(r < 10))}


def read_queries(
    root: Path, catalog: CodeCatalog, codes: set[str], heldout_percent: int, limit_docs: int | None
):  # type: ignore[no-untyped-def]
    """Held-out index terms [(term, code)] and dev evidence [(sentence, [mention texts], code)]."""
    from medcode.data.codiesp import read_split
    from medcode.model.text.sources import full_pipeline
    from medcode.settings import get_settings
    from medcode.training.codiesp_evidence import codiesp_sentence_evidence

    heldout = [(p.mention, p.code) for p in heldout_index_pairs(catalog, heldout_percent) if p.code in codes]
    split = read_split(root / "codiesp", "dev")
    docs = {e.encounter_id: e.documents[0].text for e in split.encounters}
    evidence = codiesp_sentence_evidence(root / "codiesp", "dev")
    pipeline = full_pipeline(root, get_settings().cache_dir)
    dev: list[tuple[str, list[str], str]] = []
    doc_ids = sorted(evidence)[:limit_docs] if limit_docs else sorted(evidence)
    for doc_id in doc_ids:
        text = docs.get(doc_id)
        if text is None:
            continue
        mentions = pipeline.extract(text, "d1")
        for task, code, start, end in evidence[doc_id]:
            if task != "diagnosis" or code not in codes:
                continue
            inside = [m.text for m in mentions if start <= m.start and m.end <= end]
            dev.append((text[start:end], inside, code))
    return heldout, dev


def billable_targets(catalog: CodeCatalog) -> list[str]:
    """The billable codes among those the default preset embeds (`CodeResources._dense_indexes`'s order)."""
    from medcode.model.trained.coder import dense_worthy

    embedded = sorted(
        c for c in catalog.codes(CM) if catalog.title(CM, c) and dense_worthy(c, catalog.title(CM, c))
    )
    return [c for c in embedded if (info := catalog.info(CM, c)) is not None and info.billable]


def sample(
    heldout: list[tuple[str, str]],
    dev: list[tuple[str, list[str], str]],
    billable: list[str],
    max_heldout: int,
    targets: int,
) -> tuple[list[tuple[str, str]], list[str]]:
    """The seeded sample of held-out terms (`max_heldout`, 0: all) and the target codes (`targets`: the
    queries' gold codes plus seeded others; 0: every billable embedded code)."""
    rng = np.random.default_rng(7)
    if max_heldout and len(heldout) > max_heldout:
        heldout = [heldout[int(i)] for i in sorted(rng.choice(len(heldout), max_heldout, replace=False))]
    codes = billable
    if targets:
        gold = sorted({c for _, c in heldout} | {c for *_, c in dev})
        others = sorted(set(billable) - set(gold))
        extra = max(0, targets - len(gold))
        codes = sorted(gold + [others[int(i)] for i in rng.choice(len(others), extra, replace=False)])
    return heldout, codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--linked", type=Path, default=None, help="folder of the linked encoder's weights")
    parser.add_argument("--encoder", choices=("generic", "linked", "both"), default="both")
    parser.add_argument("--data-dir", type=Path, default=None, help="datasets folder (MEDCODE_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=Path("linking.json"), help="figures (merged into)")
    parser.add_argument("--queries", type=Path, default=None, help="queries read once, kept in this file")
    parser.add_argument("--heldout-percent", type=int, default=LinkConfig().heldout_percent)
    parser.add_argument("--limit-docs", type=int, default=None, help="only the first N dev documents")
    parser.add_argument(
        "--targets",
        type=int,
        default=0,
        help="0: every billable embedded code; N: the queries' gold codes plus seeded random others, N in all",
    )
    parser.add_argument("--max-heldout", type=int, default=0, help="a seeded sample of N held-out terms")
    args = parser.parse_args()
    from medcode.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    root = args.data_dir or settings.data_dir
    if root is None:
        parser.error("name the datasets folder: --data-dir or MEDCODE_DATA_DIR")
    catalog = build_catalog(knowledge_from(root))
    billable = billable_targets(catalog)
    if args.queries is not None and args.queries.is_file():
        stored = json.loads(args.queries.read_text(encoding="utf-8"))
        heldout = [tuple(h) for h in stored["heldout"]]
        dev = [tuple(d) for d in stored["dev"]]
    else:
        heldout, dev = read_queries(root, catalog, set(billable), args.heldout_percent, args.limit_docs)
        if args.queries is not None:
            args.queries.write_text(json.dumps({"heldout": heldout, "dev": dev}), encoding="utf-8")
    heldout, codes = sample(heldout, dev, billable, args.max_heldout, args.targets)
    titles = [catalog.title(CM, c) for c in codes]
    row_of = {c: i for i, c in enumerate(codes)}
    log.info(
        "queries: %d held-out index terms, %d dev evidence sentences; %d targets",
        len(heldout),
        len(dev),
        len(codes),
    )
    payload = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    results: dict[str, dict[str, dict[str, float]]] = payload.get("results", {})
    timing: dict[str, float] = payload.get("seconds", {})
    encoders = []
    if args.encoder in ("generic", "both"):
        encoders.append(("generic", Encoder(threads=1)))
    if args.encoder in ("linked", "both"):
        if args.linked is None:
            parser.error("--linked is needed to measure the linked encoder")
        encoders.append(
            ("linked", Encoder(path=args.linked, name=f"{LINKED_PREFIX}{args.linked.name}", threads=1))
        )
    for name, encoder in encoders:
        started = time.perf_counter()
        index = build_code_index(codes, titles, name, encoder, settings.cache_dir)
        targets = np.ascontiguousarray(as_stored(index).vectors)
        out: dict[str, dict[str, float]] = results.setdefault(name, {})
        gold_rows = [row_of[c] for *_, c in dev]

        def save(
            part: str,
            figures: dict[str, float],
            name: str = name,
            out: dict[str, dict[str, float]] = out,
            started: float = started,
        ) -> None:
            # after each part: a run cut short by the machine still leaves what it measured
            out[part] = figures
            log.info("%s %s: %s", name, part, json.dumps(figures))
            timing[name] = round(time.perf_counter() - started, 1)
            payload.update(
                {
                    "targets": len(codes),
                    "billable_embedded": len(billable),
                    "results": results,
                    "seconds": timing,
                }
            )
            if name == "linked":
                payload["linked"] = str(args.linked)
            args.out.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")

        q = encoder.encode([m for m, _ in heldout])
        save("heldout", accuracy(ranks(q, targets, [row_of[c] for _, c in heldout])))
        flat = [m for _, ms, _ in dev for m in ms]
        owner = [i for i, (_, ms, _) in enumerate(dev) for _ in ms]
        mention_ranks = (
            ranks(encoder.encode(flat), targets, [gold_rows[i] for i in owner]) if flat else np.zeros(0)
        )
        best = np.full(len(dev), 10, dtype=int)
        for i, r in zip(owner, mention_ranks, strict=True):
            best[i] = min(best[i], int(r))
        figures = accuracy(best)
        figures["with_mentions"] = float(np.mean([bool(ms) for _, ms, _ in dev]))
        save("dev-mention", figures)
        sentences = encoder.encode([s for s, _, _ in dev])
        save("dev-sentence", accuracy(ranks(sentences, targets, gold_rows)))
    print("| queries | n | encoder | acc@1 | acc@10 |")
    print("|---|---:|---|---:|---:|")
    for part in ("heldout", "dev-mention", "dev-sentence"):
        for name, found in sorted(results.items()):
            if part not in found:
                continue
            r = found[part]
            print(f"| {part} | {r['n']} | {name} | {r['acc@1']:.3f} | {r['acc@10']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
