"""An admin model reload reaches every server process on PostgreSQL: the reload bumps the shared reload
generation, and every other process reloads once on its next model poll, whatever the model reference (a
pack folder, which no registry probe can watch). Two apps on one database stand for two workers here; the
real `medcode serve --workers 2` is in test_workers.py."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from medcode.model.base import Coder
from medcode.serving.app import create_app
from medcode.serving.db import Database
from medcode.serving.holder import ModelHolder
from medcode.serving.model_generation import current_generation, request_reload

from .conftest import _postgres_database, bearer, make_settings, new_key
from .fakes import FakeCoder, encounter_json

PACK_REF = "/srv/medcode/packs/current"  # a pack folder: no version probe can tell that it changed


class PackFolder:
    """A fake pack folder: what a load finds there now, and how often each worker loaded it."""

    def __init__(self) -> None:
        self.version = "1"
        self.broken = False
        self.loads: dict[str, int] = {}

    def loader(self, worker: str):  # type: ignore[no-untyped-def]
        def load(ref: str) -> Coder:
            assert ref == PACK_REF
            self.loads[worker] = self.loads.get(worker, 0) + 1
            if self.broken:
                raise RuntimeError("corrupt model pack")
            return FakeCoder(version=f"pack-v{self.version}")

        return load


def _no_probe(ref: str) -> str | None:
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_database()


def _wait_for(client: TestClient, version: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, object] = client.get("/health").json()
        if body["model_version"] == version:
            return body
        assert time.monotonic() < deadline, f"the worker still serves {body['model_version']}, not {version}"
        time.sleep(0.05)


@pytest.mark.postgres
def test_an_admin_reload_reaches_the_other_worker(pg_url: str) -> None:
    pack = PackFolder()
    settings = make_settings(pg_url, model_ref=PACK_REF, model_poll_seconds=0.05)
    first = create_app(settings, loader=pack.loader("a"), version_probe=_no_probe)
    second = create_app(settings, loader=pack.loader("b"), version_probe=_no_probe)
    admin = bearer(new_key(first, "admin"))
    integration = bearer(new_key(first, "integration"))
    with TestClient(first) as a, TestClient(second) as b:
        assert _wait_for(b, "pack-v1")["model_generation"] == 0
        time.sleep(0.3)  # several polls: nothing moved, nobody reloads
        assert pack.loads == {"a": 1, "b": 1}
        pack.version = "2"
        response = a.post("/v1/admin/model/reload", headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["reloaded"] is True and body["version"] == "pack-v2"
        assert body["workers"] == "all" and body["generation"] == 1
        assert body["followers_within_seconds"] == 0.05
        health = _wait_for(b, "pack-v2")
        assert health["model_generation"] == 1 and health["pid"] == os.getpid()
        assert a.get("/health").json()["model_generation"] == 1
        suggested = b.post("/v1/suggest", json=encounter_json("e1", "Hypertension."), headers=integration)
        assert suggested.json()["model_version"] == "pack-v2"
        time.sleep(0.3)
        assert pack.loads == {"a": 2, "b": 2}, "each worker reloads exactly once per admin reload"


@pytest.mark.postgres
def test_a_broken_pack_is_tried_once_per_reload_and_the_old_model_keeps_serving(pg_url: str) -> None:
    pack = PackFolder()
    settings = make_settings(pg_url, model_ref=PACK_REF, model_poll_seconds=0.05)
    first = create_app(settings, loader=pack.loader("a"), version_probe=_no_probe)
    second = create_app(settings, loader=pack.loader("b"), version_probe=_no_probe)
    admin = bearer(new_key(first, "admin"))
    with TestClient(first) as a, TestClient(second) as b:
        _wait_for(b, "pack-v1")
        pack.version, pack.broken = "2", True
        response = a.post("/v1/admin/model/reload", headers=admin)
        assert response.status_code == 503 and response.json()["generation"] == 1
        deadline = time.monotonic() + 30
        while b.get("/health").json()["model_generation"] != 1:
            assert time.monotonic() < deadline, "the other worker never tried the reload"
            time.sleep(0.05)
        time.sleep(0.3)
        assert pack.loads == {"a": 2, "b": 2}, "a broken pack is not retried on every poll"
        assert b.get("/health").json()["model_version"] == "pack-v1"


def test_on_sqlite_the_reload_answer_says_it_reached_this_process_only(sqlite_url: str) -> None:
    pack = PackFolder()
    settings = make_settings(sqlite_url, model_ref=PACK_REF, model_poll_seconds=0.05)
    app = create_app(settings, loader=pack.loader("a"), version_probe=_no_probe)
    admin = bearer(new_key(app, "admin"))
    with TestClient(app) as client:
        pack.version = "2"
        body = client.post("/v1/admin/model/reload", headers=admin).json()
        assert body["reloaded"] is True and body["version"] == "pack-v2"
        assert (body["workers"], body["generation"], body["followers_within_seconds"]) == (
            "this process",
            None,
            None,
        )
        assert current_generation(app.state.db) == 0


def test_the_poller_reloads_once_per_generation_and_skips_a_reload_it_already_made(sqlite_url: str) -> None:
    database = Database.connect(sqlite_url)
    pack = PackFolder()
    holder = ModelHolder(
        PACK_REF,
        loader=pack.loader("a"),
        version_probe=_no_probe,
        generation_probe=lambda: current_generation(database),
    )
    try:
        holder.ensure_loaded()
        assert holder.generation == 0 and holder.poll_once() is None
        assert request_reload(database, "admin-1") == 1
        assert request_reload(database, "admin-2") == 2  # each request gets its own number
        pack.version = "2"
        outcome = holder.poll_once()
        assert outcome is not None and outcome.reloaded and outcome.version == "pack-v2"
        assert holder.generation == 2 and holder.poll_once() is None
        assert pack.loads == {"a": 2}
        # this process's own admin reload ran first: the poller, which saw the bump, does not load again
        request_reload(database, "admin-1")
        holder.reload()
        assert holder._reload(unless_generation=3) is None
        assert holder.poll_once() is None and pack.loads == {"a": 3}
    finally:
        database.dispose()
