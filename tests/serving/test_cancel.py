"""Abandoned suggestions stop consuming CPU: a suggestion whose client disconnects, or whose time budget is
spent, is told to stop (model.cancel) and the model gives its thread back at its next check."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from medcode.data.types import Encounter, Result
from medcode.model.cancel import Stopped, check_stop
from medcode.serving.app import create_app
from medcode.serving.server import serve_in_thread

from .conftest import bearer, make_settings, new_key
from .fakes import FakeCoder, encounter_json


class CheckingCoder(FakeCoder):
    """Works (busy, on the CPU) for `seconds`, checking `model.cancel.check_stop` every few milliseconds the
    way the real models check between documents and stages; records when it started and when it stopped."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.started = threading.Event()
        self.ended = threading.Event()
        self.ended_at = 0.0
        self.stopped = False

    def suggest(self, encounter: Encounter) -> Result:
        self.started.set()
        until = time.perf_counter() + self.seconds
        try:
            while time.perf_counter() < until:
                check_stop()
                sum(range(2_000))  # a few hundred microseconds of real work between checks
            return super().suggest(encounter)
        except Stopped:
            self.stopped = True
            raise
        finally:
            self.ended_at = time.perf_counter()
            self.ended.set()


def test_a_suggestion_whose_client_disconnects_stops_within_a_second(tmp_path: Path) -> None:
    coder = CheckingCoder(seconds=30)
    settings = make_settings(
        f"sqlite:///{tmp_path / 'medcode.db'}", home=tmp_path / "home", suggest_workers=1
    )
    app = create_app(settings, coder=coder)
    key = new_key(app, "integration")
    with serve_in_thread(app) as url:
        host, port = urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or 80
        body = json.dumps(encounter_json("e1", "Diabetes.")).encode()
        head = (
            f"POST /v1/suggest HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(head.encode() + body)
            assert coder.started.wait(10), "the suggestion never started"
        gone = time.perf_counter()  # the client closed its connection mid-suggestion
        assert coder.ended.wait(5), "the abandoned suggestion kept running"
        assert coder.stopped and coder.ended_at - gone < 1.0, f"stopped {coder.ended_at - gone:.2f} s later"
        coder.seconds = 0
        with httpx.Client(base_url=url, headers=bearer(key), timeout=10) as client:
            again = client.post("/v1/suggest", json=encounter_json("e2", "Diabetes."))
        assert again.status_code == 200, "the only worker is free again"
    app.state.db.dispose()


def test_a_suggestion_over_its_budget_stops_within_a_second(tmp_path: Path) -> None:
    coder = CheckingCoder(seconds=30)
    settings = make_settings(
        f"sqlite:///{tmp_path / 'medcode.db'}",
        home=tmp_path / "home",
        suggest_workers=1,
        suggest_timeout_seconds=0.5,
    )
    app = create_app(settings, coder=coder)
    headers = bearer(new_key(app, "integration"))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        answer = client.post("/v1/suggest", json=encounter_json("e1", "Diabetes."))
        answered = time.perf_counter()
        assert answer.status_code == 504 and answer.json()["code"] == "suggestion_timeout"
        assert coder.ended.wait(5) and coder.stopped
        assert coder.ended_at - answered < 1.0
    app.state.db.dispose()


def test_a_suggestion_that_finishes_is_answered_and_never_stopped(tmp_path: Path) -> None:
    coder = CheckingCoder(seconds=0.3)
    settings = make_settings(f"sqlite:///{tmp_path / 'medcode.db'}", home=tmp_path / "home")
    app = create_app(settings, coder=coder)
    headers = bearer(new_key(app, "integration"))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        answer = client.post("/v1/suggest", json=encounter_json("e1", "Chest pain and hypertension."))
        assert answer.status_code == 200
        assert {c["code"] for c in answer.json()["codes"]} == {"R07.9", "I10"}
        assert not coder.stopped
    app.state.db.dispose()
