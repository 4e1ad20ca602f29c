"""/health while the model loads (503 "loading", suggestions 503 with Retry-After), after a failed load,
and with the first-run training's status file (running, gone, absent), and the UI header's banner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from medcode.model.base import Coder
from medcode.serving.app import create_app
from medcode.settings import Settings

from .conftest import bearer, make_settings, new_key
from .fakes import FakeCoder, encounter_json


class SlowLoader:
    """Loads only when the test says so (a model that takes minutes to open, in miniature)."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.fail = fail

    def __call__(self, ref: str) -> Coder:
        assert self.release.wait(30), "the test never released the loader"
        if self.fail:
            raise RuntimeError("corrupt model pack")
        return FakeCoder(version="slow-v1")


def wait_for_status(client: TestClient, status: str, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while (body := client.get("/health").json())["status"] != status:
        assert time.monotonic() < deadline, f"/health never said {status}: {body}"
        time.sleep(0.02)
    return body


def slow_app(settings: Settings, loader: SlowLoader):  # type: ignore[no-untyped-def]
    return create_app(settings, loader=loader, version_probe=lambda ref: "1", ready_wait_seconds=0)


def test_health_answers_loading_while_a_slow_model_loads(sqlite_url: str) -> None:
    loader = SlowLoader()
    app = slow_app(make_settings(sqlite_url), loader)
    key = bearer(new_key(app, "integration"))
    with TestClient(app) as client:
        response = client.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert (
            body["status"] == "loading" and body["model_state"] == "loading" and body["model_version"] is None
        )
        suggestion = client.post("/v1/suggest", json=encounter_json("e1", "Hypertension."), headers=key)
        assert suggestion.status_code == 503 and suggestion.headers["Retry-After"] == "5"
        assert suggestion.json()["code"] == "model_loading" and "loading" in suggestion.json()["detail"]
        stored = client.post("/v1/encounters", json=encounter_json("e2", "Hypertension."), headers=key)
        assert stored.status_code == 503
        loader.release.set()
        ready = wait_for_status(client, "ok")
        assert ready["model_version"] == "slow-v1" and ready["model_state"] == "ready"
        suggestion = client.post("/v1/suggest", json=encounter_json("e1", "Hypertension."), headers=key)
        assert suggestion.status_code == 200 and suggestion.json()["model_version"] == "slow-v1"


def test_a_model_that_fails_to_load_is_reported_not_waited_for(sqlite_url: str) -> None:
    loader = SlowLoader(fail=True)
    loader.release.set()
    app = slow_app(make_settings(sqlite_url), loader)
    key = bearer(new_key(app, "integration"))
    with TestClient(app) as client:
        body = wait_for_status(client, "degraded")
        assert body["model_state"] == "failed" and body["model_version"] is None
        suggestion = client.post("/v1/suggest", json=encounter_json("e1", "Hypertension."), headers=key)
        assert suggestion.status_code == 503 and suggestion.json()["code"] == "model_unavailable"
        assert "Retry-After" in suggestion.headers


def test_a_quick_model_is_ready_when_the_server_starts(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), loader=lambda ref: FakeCoder(version="quick-v1"))
    with TestClient(app) as client:
        response = client.get("/health")
        assert response.status_code == 200 and response.json()["model_version"] == "quick-v1"


def write_status(settings: Settings, status: dict[str, object]) -> None:
    path = settings.training_status_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(status))


@pytest.fixture
def home_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, home=tmp_path / "home")


def test_health_reports_the_running_training_job(home_settings: Settings) -> None:
    write_status(
        home_settings,
        {
            "state": "running",
            "step": "fitting the default preset on 500 encounters (codiesp)",
            "started_at": "2026-11-01T12:00:00+00:00",
            "pid": os.getpid(),
        },
    )
    app = create_app(home_settings, coder=FakeCoder())
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 200
    training = response.json()["training"]
    assert training["state"] == "running" and training["pid"] == os.getpid()
    assert training["step"] == "fitting the default preset on 500 encounters (codiesp)"
    assert training["started_at"].startswith("2026-11-01T12:00:00")


def test_a_running_job_whose_process_is_gone_reads_interrupted(home_settings: Settings) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_status(home_settings, {"state": "running", "step": "starting", "pid": gone.pid})
    with TestClient(create_app(home_settings, coder=FakeCoder())) as client:
        training = client.get("/health").json()["training"]
    assert training["state"] == "interrupted" and training["pid"] == gone.pid


@pytest.mark.parametrize("content", [None, "{not json", '{"step": "no state"}'])
def test_no_readable_status_file_means_no_training_entry(
    home_settings: Settings, content: str | None
) -> None:
    if content is not None:
        home_settings.training_status_file.parent.mkdir(parents=True)
        home_settings.training_status_file.write_text(content)
    with TestClient(create_app(home_settings, coder=FakeCoder())) as client:
        response = client.get("/health")
    assert response.status_code == 200 and response.json()["training"] is None


def test_the_ui_header_shows_the_training_banner_while_it_runs(home_settings: Settings) -> None:
    app = create_app(home_settings, coder=FakeCoder())
    with TestClient(app) as client:
        assert "trained model on its way" not in client.get("/ui/signin").text
        write_status(home_settings, {"state": "running", "step": "notes read in 2.0 s", "pid": os.getpid()})
        page = client.get("/ui/signin").text
        assert "trained model on its way: notes read in 2.0 s" in page
        write_status(home_settings, {"state": "succeeded", "step": "model x registered", "pid": os.getpid()})
        assert "trained model on its way" not in client.get("/ui/signin").text
