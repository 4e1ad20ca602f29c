"""Model hot-swap: swap, reload (keeping the old model on failure), registry polling, the admin endpoint."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from medcode.model.base import Coder
from medcode.serving.app import create_app
from medcode.serving.holder import ModelHolder, is_pollable_ref

from .conftest import bearer, make_settings, new_key
from .fakes import FakeCoder, encounter_json


class Registry:
    """A fake registry: which version the champion alias points at, and whether loading works."""

    def __init__(self) -> None:
        self.version = "1"
        self.broken = False
        self.loads = 0

    def load(self, ref: str) -> Coder:
        self.loads += 1
        if self.broken:
            raise RuntimeError("corrupt model pack")
        return FakeCoder(version=f"fake-v{self.version}")

    def probe(self, ref: str) -> str | None:
        return self.version

    def loaded_holder(self) -> ModelHolder:
        """A holder polling this registry's champion, its first model (fake-v1) already loaded."""
        holder = ModelHolder("champion", loader=self.load, version_probe=self.probe)
        holder.ensure_loaded()
        return holder


def test_swap_replaces_the_model_and_returns_the_old_one() -> None:
    holder = ModelHolder("champion", coder=FakeCoder(version="a"))
    old = holder.swap(FakeCoder(version="b"))
    assert old is not None and old.version == "a"
    assert holder.coder.version == "b"


def test_the_model_loads_once_on_first_use() -> None:
    registry = Registry()
    holder = ModelHolder("champion", loader=registry.load, version_probe=registry.probe)
    assert not holder.loaded
    assert holder.coder.version == "fake-v1" and holder.coder.version == "fake-v1"
    assert registry.loads == 1


def test_reload_keeps_the_old_model_when_loading_fails() -> None:
    registry = Registry()
    holder = registry.loaded_holder()
    registry.version, registry.broken = "2", True
    outcome = holder.reload()
    assert not outcome.reloaded and "corrupt model pack" in (outcome.error or "")
    assert outcome.version == "fake-v1" and holder.coder.version == "fake-v1"
    registry.broken = False
    assert holder.reload().reloaded and holder.coder.version == "fake-v2"


def test_a_failing_warm_up_counts_as_a_failed_load() -> None:
    registry = Registry()

    def warm(coder: Coder) -> None:
        if coder.version == "fake-v2":
            raise RuntimeError("cannot answer")

    holder = ModelHolder("champion", loader=registry.load, version_probe=registry.probe, warm=warm)
    holder.ensure_loaded()
    registry.version = "2"
    assert not holder.reload().reloaded and holder.coder.version == "fake-v1"


def test_polling_reloads_only_when_the_champion_moves() -> None:
    registry = Registry()
    holder = registry.loaded_holder()
    assert holder.poll_once() is None and registry.loads == 1
    registry.version = "2"
    outcome = holder.poll_once()
    assert outcome is not None and outcome.reloaded and holder.coder.version == "fake-v2"
    assert holder.poll_once() is None and registry.loads == 2


def test_polling_does_not_retry_a_broken_champion_on_every_tick() -> None:
    registry = Registry()
    holder = registry.loaded_holder()
    registry.version, registry.broken = "2", True
    outcome = holder.poll_once()
    assert outcome is not None and not outcome.reloaded
    assert holder.poll_once() is None and registry.loads == 2
    assert holder.coder.version == "fake-v1"


def test_only_moving_references_are_polled() -> None:
    assert is_pollable_ref("champion") and is_pollable_ref("models:/medcode@champion")
    assert not is_pollable_ref("builtin") and not is_pollable_ref("models:/medcode/3")


def test_the_running_app_picks_up_a_new_champion(sqlite_url: str) -> None:
    registry = Registry()
    settings = make_settings(sqlite_url, model_ref="champion", model_poll_seconds=0.05)
    app = create_app(settings, loader=registry.load, version_probe=registry.probe)
    key = bearer(new_key(app, "integration"))
    with TestClient(app) as client:
        assert client.get("/health").json()["model_version"] == "fake-v1"
        registry.version = "2"
        deadline = time.monotonic() + 30  # the poller runs every 0.05 s: generous for a loaded CI machine
        while client.get("/health").json()["model_version"] != "fake-v2":
            assert time.monotonic() < deadline, "the poller did not swap the model"
            time.sleep(0.05)
        result = client.post("/v1/suggest", json=encounter_json("e1", "Hypertension."), headers=key).json()
        assert result["model_version"] == "fake-v2"


@pytest.mark.parametrize("broken", [False, True])
def test_admin_reload_endpoint(sqlite_url: str, broken: bool) -> None:
    registry = Registry()
    app = create_app(
        make_settings(sqlite_url, model_ref="champion"), loader=registry.load, version_probe=registry.probe
    )
    admin = bearer(new_key(app, "admin"))
    with TestClient(app) as client:
        registry.version, registry.broken = "2", broken
        response = client.post("/v1/admin/model/reload", headers=admin)
        body = response.json()
        if broken:
            assert response.status_code == 503
            assert body["reloaded"] is False and body["version"] == "fake-v1" and body["error"]
            assert client.get("/health").json()["model_version"] == "fake-v1"
        else:
            assert response.status_code == 200
            assert body == {
                "reloaded": True,
                "version": "fake-v2",
                "previous_version": "fake-v1",
                "error": None,
                "workers": "this process",  # SQLite serves one process
                "generation": None,
                "followers_within_seconds": None,
            }
        audit = client.get(
            "/v1/audit?action=" + ("model.reload_failed" if broken else "model.reloaded"), headers=admin
        )
        assert audit.json()["total"] == 1
