"""How long an admin model reload takes to reach every worker of `medcode serve --workers 2` on PostgreSQL.

    python benchmarks/reload_workers.py --db postgresql+psycopg://postgres@127.0.0.1:5545/medcode_test \\
        [--poll 1] [--reloads 3]

Fits the tiny trained pack of tests/serving/test_workers.py (no dense encoder: it loads in seconds), serves
it from a pack folder with two workers on a fresh database of the given server, then `--reloads` times:
renames a new pack (a new version name) into the folder, asks `POST /v1/admin/model/reload`, and polls
/health over fresh connections until both worker pids serve the new version. One JSON line per reload:
seconds until the reload answered (the answering worker's own load) and until both workers served it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", required=True, help="PostgreSQL server URL (a scratch database is made on it)"
    )
    parser.add_argument("--poll", type=float, default=1.0, help="MEDCODE_MODEL_POLL_SECONDS of the workers")
    parser.add_argument("--reloads", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from medcode.model.catalog import Knowledge
    from medcode.model.trained.coder import DefaultConfig
    from medcode.serving.db import Database, scratch_postgres_database
    from medcode.training.default import fit_default
    from tests.model.synthetic import make_corpus
    from tests.serving.test_workers import Workers, _copy_as, _keys, bearer

    tmp = Path(tempfile.mkdtemp(prefix="medcode-reload-"))
    config = DefaultConfig(use_dense=False, folds=2, ranker_folds=2, ranker_max_iter=30)
    coder, _ = fit_default(make_corpus(12, seed=5), Knowledge(), config)
    pack = coder.save(tmp / "v1")
    with scratch_postgres_database(args.db) as url:
        database = Database.connect(url)
        admin = bearer(_keys(database, "admin", 1)[0])
        database.dispose()
        current = _copy_as(pack, tmp / "current", "pack-v1")
        env = {"MEDCODE_MODEL": str(current), "MEDCODE_MODEL_POLL_SECONDS": str(args.poll)}
        server = Workers(url, tmp / "home", tmp / "serve.log", env)
        try:
            _serving(server.url, "pack-v1", time.monotonic())
            for i in range(args.reloads):
                version = f"pack-v{i + 2}"
                staged = _copy_as(pack, tmp / f"staged{i}", version)
                current.rename(tmp / f"retired{i}")
                staged.rename(current)
                start = time.monotonic()
                answer = httpx.post(f"{server.url}/v1/admin/model/reload", headers=admin, timeout=300).json()
                answered = time.monotonic() - start
                seen = _serving(server.url, version, start)
                row = {
                    "poll_s": args.poll,
                    "version": version,
                    "generation": answer["generation"],
                    "workers": answer["workers"],
                    "answer_s": round(answered, 2),
                    "all_workers_s": round(max(seen.values()), 2),
                }
                print(json.dumps(row), flush=True)
        finally:
            server.stop()


def _serving(url: str, version: str, start: float, timeout: float = 600) -> dict[int, float]:
    """pid -> seconds from `start` until that worker answered /health with `version` (two workers)."""
    seen: dict[int, float] = {}
    while len(seen) < 2:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"only pids {sorted(seen)} serve {version} after {timeout:.0f} s")
        body = httpx.get(f"{url}/health", timeout=10).json()
        if body["model_version"] == version and body["pid"] not in seen:
            seen[body["pid"]] = time.monotonic() - start
        time.sleep(0.02)
    return seen


if __name__ == "__main__":
    main()
