"""`medcode serve --workers 2` on PostgreSQL, as a real child process on loopback: review claims stay exclusive
across the worker processes, and every worker switches to a newly promoted champion.

Which worker answered is told by /health's `model_loaded_at`: each process loads its model at its own
moment, so two distinct load times for one model version are two processes. Each request opens a fresh
connection, which the kernel hands to whichever worker accepts first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from medcode.serving.auth import SYSTEM_PRINCIPAL
from medcode.serving.db import Database
from medcode.serving.orm import AuditEventRow
from medcode.serving.services import keys as key_service

from .child_server import free_port, wait_healthy
from .conftest import _postgres_database, bearer
from .fakes import encounter_json, run_at_once

# Each test starts two server processes that load a model (tens of seconds on a busy machine).
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(800)]

MEDCODE = Path(sys.executable).with_name("medcode")
N_ITEMS = 6
N_CODERS = 12
CLAIMS_PER_CODER = 8


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained default pack from a tiny synthetic corpus (no dense encoder): loads in seconds."""
    from medcode.model.catalog import Knowledge
    from medcode.model.trained.coder import DefaultConfig
    from medcode.training.default import fit_default
    from tests.model.synthetic import make_corpus

    config = DefaultConfig(use_dense=False, folds=2, ranker_folds=2, ranker_max_iter=30)
    coder, _ = fit_default(make_corpus(12, seed=5), Knowledge(), config)
    return coder.save(tmp_path_factory.mktemp("packs") / "v1")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MEDCODE_HOME for the module's servers: the code-search and code-set caches are built once."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_database()


def _keys(database: Database, role: str, n: int) -> list[str]:
    with database.sessions() as session:
        return [key_service.create(session, SYSTEM_PRINCIPAL, role, f"{role} {i}").key for i in range(n)]


class Workers:
    """`medcode serve --workers N` in a child process; `stop()` sends SIGTERM (then SIGKILL)."""

    def __init__(self, db_url: str, home: Path, log: Path, env: dict[str, str], workers: int = 2) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        command = [str(MEDCODE), "serve", "--workers", str(workers), "--port", str(port), "--db", db_url]
        environment = {
            **os.environ,
            "MEDCODE_HOME": str(home),
            "MEDCODE_AUTO_TRAIN": "off",
            "MEDCODE_RATE_LIMIT_PER_MINUTE": "0",
            **env,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_healthy(self.url, self.process, timeout=300)
            # one worker answering 200 says nothing of the other, which may still load its model (a request it
            # takes answers 503 model_loading): wait until each worker process has answered 200
            self._wait_all_ready(workers, timeout=300)
        except BaseException:
            self.stop()
            raise

    def _wait_all_ready(self, workers: int, timeout: float) -> None:
        ready: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(ready) < workers:
            assert time.monotonic() < deadline, f"only worker(s) {sorted(ready)} became ready"
            assert self.process.poll() is None, f"the server exited with {self.process.returncode}"
            response = httpx.get(f"{self.url}/health", timeout=10)  # a fresh connection: any worker
            if response.status_code == 200:
                ready.add(int(response.json()["pid"]))
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def _loads_seen(url: str, version: str, *, want: int, timeout: float) -> set[str]:
    """Distinct `model_loaded_at` values of workers that answer /health with `version`, asked over fresh
    connections until `want` are seen (or the time runs out)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        body = httpx.get(f"{url}/health", timeout=10).json()
        if body["model_version"] == version:
            seen.add(body["model_loaded_at"])
        time.sleep(0.05)
    return seen


def test_claims_stay_exclusive_across_two_workers(
    pg_url: str, tiny_pack: Path, home: Path, tmp_path: Path
) -> None:
    database = Database.connect(pg_url)
    integration = bearer(_keys(database, "integration", 1)[0])
    coder_keys = _keys(database, "coder", N_CODERS)
    server = Workers(pg_url, home, tmp_path / "serve.log", {"MEDCODE_MODEL": str(tiny_pack)})
    held: dict[int, str] = {}  # item -> the coder that holds it, as the coders themselves see it
    doubles: list[str] = []
    errors: list[str] = []
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(N_CODERS)

    def claim_and_release(key: str) -> None:
        with httpx.Client(base_url=server.url, headers=bearer(key), timeout=120) as http:
            start.wait()
            claims = 0
            while claims < CLAIMS_PER_CODER and not errors:
                claim = http.post("/v1/review/claim")
                if claim.status_code == 204:  # every item is held by someone: ask again
                    time.sleep(0.01)
                    continue
                if claim.status_code != 200:
                    errors.append(f"claim {claim.status_code}: {claim.text[:200]}")
                    return
                item = claim.json()["item_id"]
                with lock:
                    if item in held:
                        doubles.append(f"item {item}: {held[item][-6:]} and {key[-6:]}")
                    held[item] = key
                    granted.append(item)
                time.sleep(0.005)
                with lock:
                    held.pop(item, None)  # before the release: whoever gets it next finds it free here too
                released = http.post(f"/v1/review/items/{item}/release")
                if released.status_code != 200:
                    errors.append(f"release {released.status_code}: {released.text[:200]}")
                    return
                claims += 1

    try:
        with httpx.Client(base_url=server.url, headers=integration, timeout=60) as http:
            for i in range(N_ITEMS):
                text = f"Essential hypertension and type 2 diabetes, visit {i}. Denies chest pain."
                submitted = http.post("/v1/encounters?route=review", json=encounter_json(f"w{i}", text))
                assert submitted.status_code == 201, submitted.text
        coders = [(f"coder {key[-6:]}", partial(claim_and_release, key)) for key in coder_keys]
        errors += run_at_once(coders, timeout=300)  # a coder that hung is one of them
        workers = _loads_seen(server.url, _health_version(server.url), want=2, timeout=60)
    finally:
        server.stop()
    assert not errors, errors[:5]
    assert not doubles, doubles[:5]
    assert len(granted) == N_CODERS * CLAIMS_PER_CODER
    assert len(workers) == 2, "the claims did not go through two worker processes"
    # The server's own record: per item, claims and releases alternate; never two claims in a row.
    with database.sessions() as session:
        events = session.execute(
            select(AuditEventRow.entity_id, AuditEventRow.action)
            .where(AuditEventRow.action.in_(["review.claimed", "review.released"]))
            .order_by(AuditEventRow.id)
        ).all()
    database.dispose()
    last: dict[str, str] = {}
    for item, action in events:
        assert last.get(item) != action, f"item {item}: {action} twice in a row"
        last[item] = action
    assert sum(action == "review.claimed" for _, action in events) == len(granted)


def _health_version(url: str) -> str:
    version: str = httpx.get(f"{url}/health", timeout=10).json()["model_version"]
    return version


def _register(tracking_uri: str, pack: Path) -> str:
    """A new registry version holding `pack`, made champion; its number."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.get_registered_model("medcode")
    except MlflowException:
        client.create_registered_model("medcode")
    version = client.create_model_version("medcode", source=str(pack)).version
    client.set_registered_model_alias("medcode", "champion", str(version))
    return str(version)


def _copy_as(pack: Path, folder: Path, version: str) -> Path:
    """The same pack under another model version (the manifest names it)."""
    shutil.copytree(pack, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = version
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_every_worker_switches_to_a_new_champion(
    pg_url: str, tiny_pack: Path, home: Path, tmp_path: Path
) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = json.loads((tiny_pack / "manifest.json").read_text())["version"]
    _register(tracking, tiny_pack)
    database = Database.connect(pg_url)
    integration = bearer(_keys(database, "integration", 1)[0])
    database.dispose()
    env = {"MLFLOW_TRACKING_URI": tracking, "MEDCODE_MODEL": "champion", "MEDCODE_MODEL_POLL_SECONDS": "1"}
    server = Workers(pg_url, home, tmp_path / "serve.log", env)
    try:
        before = _loads_seen(server.url, first, want=2, timeout=120)
        assert len(before) == 2, f"expected two workers serving {first}, saw {before}"
        second = f"{first}-promoted"
        _register(tracking, _copy_as(tiny_pack, tmp_path / "v2", second))
        after = _loads_seen(server.url, second, want=2, timeout=180)
        assert len(after) == 2, f"only {len(after)} worker(s) switched to {second}"
        answers = [httpx.get(f"{server.url}/health", timeout=10).json()["model_version"] for _ in range(20)]
        assert set(answers) == {second}
        note = encounter_json("s1", "Essential hypertension.")
        suggested = httpx.post(f"{server.url}/v1/suggest", json=note, headers=integration, timeout=60)
        assert suggested.status_code == 200, suggested.text
        assert suggested.json()["model_version"] == second
    finally:
        server.stop()


def _workers_serving(url: str, version: str, *, want: int, timeout: float) -> dict[int, dict[str, object]]:
    """/health of each distinct worker process (by pid) that answers with `version`, asked over fresh
    connections until `want` are seen (or the time runs out)."""
    seen: dict[int, dict[str, object]] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        body = httpx.get(f"{url}/health", timeout=10).json()
        if body["model_version"] == version:
            seen[body["pid"]] = body
        time.sleep(0.05)
    return seen


def test_an_admin_reload_reaches_every_worker_serving_a_pack_folder(
    pg_url: str, tiny_pack: Path, home: Path, tmp_path: Path
) -> None:
    """A pack folder has no registry to poll: before the shared reload generation, an admin reload reached
    only the worker that answered it."""
    current = _copy_as(tiny_pack, tmp_path / "current", "pack-v1")
    database = Database.connect(pg_url)
    admin = bearer(_keys(database, "admin", 1)[0])
    integration = bearer(_keys(database, "integration", 1)[0])
    database.dispose()
    env = {"MEDCODE_MODEL": str(current), "MEDCODE_MODEL_POLL_SECONDS": "1"}
    server = Workers(pg_url, home, tmp_path / "serve.log", env)
    try:
        before = _workers_serving(server.url, "pack-v1", want=2, timeout=120)
        assert len(before) == 2, f"expected two workers serving pack-v1, saw pids {sorted(before)}"
        assert {body["model_generation"] for body in before.values()} == {0}
        # a new pack in the same folder (renamed into place, as a deployment would)
        staged = _copy_as(tiny_pack, tmp_path / "staged", "pack-v2")
        current.rename(tmp_path / "retired")
        staged.rename(current)
        reload = httpx.post(f"{server.url}/v1/admin/model/reload", headers=admin, timeout=120)
        assert reload.status_code == 200, reload.text
        answer = reload.json()
        assert answer["reloaded"] is True and answer["version"] == "pack-v2"
        assert answer["workers"] == "all" and answer["generation"] == 1
        after = _workers_serving(server.url, "pack-v2", want=2, timeout=180)
        assert len(after) == 2, f"only pid(s) {sorted(after)} reloaded to pack-v2"
        assert set(after) == set(before), "the same two worker processes, reloaded (not restarted)"
        assert {body["model_generation"] for body in after.values()} == {1}
        answers = [httpx.get(f"{server.url}/health", timeout=10).json()["model_version"] for _ in range(20)]
        assert set(answers) == {"pack-v2"}
        for _ in range(6):  # fresh connections: each worker answers suggestions with the new model
            note = encounter_json("s1", "Essential hypertension.")
            suggested = httpx.post(f"{server.url}/v1/suggest", json=note, headers=integration, timeout=60)
            assert suggested.status_code == 200, suggested.text
            assert suggested.json()["model_version"] == "pack-v2"
    finally:
        server.stop()
