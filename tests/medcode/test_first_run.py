"""The first-run background training: one job per MEDCODE_HOME (lock), its status file, its log, the setting
that turns it off, and the service switching to the model it registers. The training command is a tiny
fake script (no real training here): it logs like `medcode -v train`, waits for the test's go-ahead and
prints the JSON outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from medcode.first_run import (
    BUSY_EXIT,
    FirstRun,
    JobFiles,
    last_step,
    lock_owner,
    read_status,
    try_lock,
    write_status,
)
from medcode.model.base import Coder
from medcode.serving.app import create_app
from medcode.settings import Settings
from tests.fakes import FakeCoder

FAKE_TRAIN = """
import json, os, sys, time
from pathlib import Path
workdir = Path(sys.argv[1])
with (workdir / "runs.txt").open("a") as runs:
    runs.write(f"{os.getpid()}\\n")
print("2026-01-01 10:00:00,000 INFO medcode.training.presets: fitting the default preset on 3 encounters",
      file=sys.stderr, flush=True)
print("2026-01-01 10:00:00,000 DEBUG urllib3.connectionpool: not a step", file=sys.stderr, flush=True)
deadline = time.monotonic() + 60
while not (workdir / "go").exists():
    if time.monotonic() > deadline:
        sys.exit("no go-ahead")
    time.sleep(0.05)
if (workdir / "fail").exists():
    print("medcode: error: no coded encounters in codiesp train", file=sys.stderr)
    sys.exit(2)
(workdir / "champion.txt").write_text("2")
print(json.dumps({"version": "fake-v2", "registered_version": "2",
                  "promotion": {"promote": True, "reason": "no champion yet"}}))
"""


def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    return tmp_path


def make_settings(workdir: Path, *, data: bool = True, **overrides: Any) -> Settings:
    data_dir = workdir / "datasets"
    if data:
        (data_dir / "codiesp" / "train" / "text_files_en").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "home": workdir / "home",
        "data_dir": data_dir if data else None,
        "database_url": f"sqlite:///{workdir / 'medcode.db'}",
        "auto_train": True,
        "model_ref": "champion",
    }
    values.update(overrides)
    return Settings(**values)


def first_run(workdir: Path, settings: Settings | None = None) -> FirstRun:
    command = [sys.executable, str(workdir / "train.py"), str(workdir)]
    return FirstRun(settings or make_settings(workdir), command=command, follow_seconds=0.05)


def status_of(run: FirstRun) -> dict[str, Any]:
    return read_status(run.files.status) or {}


def runs(workdir: Path) -> list[str]:
    path = workdir / "runs.txt"
    return path.read_text().split() if path.exists() else []


def test_the_job_reports_its_step_then_the_model_it_registered(workdir: Path) -> None:
    run = first_run(workdir)
    result: list[int | None] = []
    thread = threading.Thread(target=lambda: result.append(run.run()))
    thread.start()
    running = wait_for(lambda: (s := status_of(run)).get("step", "").startswith("fitting") and s)
    assert running["state"] == "running" and running["pid"] == run.process.pid  # type: ignore[union-attr]
    assert running["step"] == "fitting the default preset on 3 encounters" and running["started_at"]
    (workdir / "go").touch()
    thread.join(30)
    assert result == [0]
    done = status_of(run)
    assert done["state"] == "succeeded" and done["model_version"] == "fake-v2" and done["promoted"] is True
    assert (
        done["registered_version"] == "2" and done["finished_at"] and "promoted to champion" in done["step"]
    )
    log = run.files.log.read_text()
    assert "fitting the default preset" in log and '"version": "fake-v2"' in log
    assert try_lock(run.files.lock) is not None, "the lock is free once the job ends"


def test_two_starts_run_one_job(workdir: Path) -> None:
    settings = make_settings(workdir)
    first, second = first_run(workdir, settings), first_run(workdir, settings)
    codes: list[int | None] = []
    threads = [threading.Thread(target=lambda r=r: codes.append(r.run())) for r in (first, second)]
    for thread in threads:
        thread.start()
    wait_for(lambda: status_of(first).get("state") == "running")
    # the start that lost the lock ends at once (its job finds the lock held) while the other's job waits
    # for the go-ahead: a fixed pause here let a slow machine touch "go" before the loser looked at the lock
    wait_for(lambda: len(codes) == 1)
    (workdir / "go").touch()
    for thread in threads:
        thread.join(30)
    assert len(runs(workdir)) == 1, "the training command ran once"
    assert len(codes) == 2 and codes.count(0) == 1 and set(codes) <= {0, BUSY_EXIT, None}
    assert status_of(first)["state"] == "succeeded"


def test_a_start_while_a_job_holds_the_lock_spawns_nothing(workdir: Path) -> None:
    settings = make_settings(workdir)
    files = JobFiles(settings.auto_train_dir)
    held = try_lock(files.lock)
    assert held is not None
    run = first_run(workdir, settings)
    assert run.run() is None and run.process is None and "already running" in (run.skipped or "")
    assert runs(workdir) == []


def test_a_lock_left_by_a_dead_process_is_taken_over(workdir: Path) -> None:
    settings = make_settings(workdir)
    files = JobFiles(settings.auto_train_dir)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    files.folder.mkdir(parents=True)
    files.lock.write_text(json.dumps({"pid": dead.pid, "started_at": "2026-01-01T00:00:00+00:00"}))
    write_status(files.status, {"state": "running", "step": "starting", "pid": dead.pid})
    (workdir / "go").touch()
    run = first_run(workdir, settings)
    assert run.run() == 0
    assert runs(workdir) and status_of(run)["state"] == "succeeded"
    assert lock_owner(files.lock) == run.process.pid  # type: ignore[union-attr]
    assert f"took over the lock left by pid {dead.pid}" in files.log.read_text()


def test_a_failed_training_says_why_and_a_restart_trains_again(workdir: Path) -> None:
    (workdir / "go").touch()
    (workdir / "fail").touch()
    run = first_run(workdir)
    assert run.run() == 1
    failed = status_of(run)
    assert failed["state"] == "failed" and failed["error"] == "no coded encounters in codiesp train"
    assert failed["exit_code"] == 2
    (workdir / "fail").unlink()
    again = first_run(workdir)
    assert again.run() == 0 and len(runs(workdir)) == 2
    assert status_of(again)["state"] == "succeeded"


def test_stopping_the_server_interrupts_the_job_and_frees_the_lock(workdir: Path) -> None:
    run = first_run(workdir)
    thread = run.start()
    wait_for(lambda: status_of(run).get("step", "").startswith("fitting"))
    run.stop()
    thread.join(30)
    stopped = status_of(run)
    assert stopped["state"] == "interrupted" and stopped["finished_at"]
    assert "champion.txt" not in {p.name for p in workdir.iterdir()}, "nothing registered"
    assert try_lock(run.files.lock) is not None


SERVER_THAT_DIES = """
import subprocess, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
subprocess.Popen([sys.executable, "-m", "medcode.first_run", str(folder), "--", *sys.argv[2:]])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    status = folder / "status.json"
    if status.exists() and "fitting" in status.read_text():
        break
    time.sleep(0.05)
"""


def test_the_job_stops_when_its_server_is_gone(workdir: Path) -> None:
    """However the server ended (SIGKILL included), its job does not train on alone."""
    (workdir / "server.py").write_text(SERVER_THAT_DIES)
    folder = workdir / "home" / "auto-train"
    command = [sys.executable, str(workdir / "train.py"), str(workdir)]
    subprocess.run(
        [sys.executable, str(workdir / "server.py"), str(folder), *command], check=True, timeout=60
    )
    stopped = wait_for(
        lambda: (s := read_status(folder / "status.json") or {}).get("state") != "running" and s
    )
    assert stopped["state"] == "interrupted" and runs(workdir)
    assert not (workdir / "champion.txt").exists()
    wait_for(lambda: (fd := try_lock(folder / "train.lock")) is not None and not os.close(fd))


def test_auto_train_off_starts_nothing(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCODE_AUTO_TRAIN", "off")
    settings = Settings(
        MEDCODE_HOME=workdir / "home", MEDCODE_DATA_DIR=workdir, MEDCODE_DATABASE_URL="sqlite://"
    )
    assert settings.auto_train is False
    run = first_run(workdir, settings)
    assert run.run() is None and run.skipped == "MEDCODE_AUTO_TRAIN is off"
    assert not run.files.status.exists() and runs(workdir) == []


def test_auto_train_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDCODE_AUTO_TRAIN", raising=False)
    assert Settings().auto_train is True


def test_without_the_datasets_the_status_says_what_is_missing(workdir: Path) -> None:
    run = first_run(workdir, make_settings(workdir, data=False))
    assert run.run() is None
    status = status_of(run)
    assert status["state"] == "unavailable" and "MEDCODE_DATA_DIR is not set" in status["step"]
    empty = make_settings(workdir, data=False, data_dir=workdir / "nothing-here")
    assert first_run(workdir, empty).run() is None
    step = status_of(run)["step"]
    assert step.startswith("no CodiEsp train split under .../nothing-here") and runs(workdir) == []


def test_a_named_model_is_served_without_training(workdir: Path) -> None:
    run = first_run(workdir, make_settings(workdir, model_ref="builtin"))
    assert run.run() is None and "'builtin'" in (run.skipped or "") and runs(workdir) == []


def test_steps_are_medcode_progress_lines_without_folders(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(
        "2026-01-01 10:00:00,000 INFO medcode.data.codiesp: CodiEsp train: 500 documents\n"
        "2026-01-01 10:00:01,000 INFO medcode.model.candidates.dense: loaded sentence encoder from "
        "/home/someone/.venv/site-packages/minilm/model (float32)\n"
        "2026-01-01 10:00:02,000 DEBUG medcode.model.x: a debug line is not a step\n"
        "2026-01-01 10:00:03,000 INFO urllib3.connectionpool: another library's line is not a step\n"
        "Traceback (most recent call last):\n"
    )
    assert last_step(log) == "loaded sentence encoder from .../model (float32)"
    assert last_step(tmp_path / "missing.log") is None


def test_status_readers_never_see_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_status(path, {"state": "running", "step": "x" * 50_000})
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            write_status(path, {"state": "running", "step": str(n) * 50_000})

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(300):
            assert json.loads(path.read_text())["state"] == "running"
    finally:
        stop.set()
        thread.join()
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_the_service_switches_to_the_model_the_job_registered(workdir: Path) -> None:
    """No champion: the service answers with the model it has, the job trains and registers (the fake
    writes the champion's new version), /health shows the job, and the poller swaps without a restart."""
    settings = make_settings(workdir, model_poll_seconds=0.05)
    champion = workdir / "champion.txt"

    def probe(ref: str) -> str:
        return champion.read_text() if champion.exists() else "none"

    def load(ref: str) -> Coder:
        return FakeCoder(version="fake-v2" if champion.exists() else "builtin-1")

    app = create_app(settings, loader=load, version_probe=probe)
    run = first_run(workdir, settings)
    with TestClient(app) as client:
        assert client.get("/health").json()["model_version"] == "builtin-1"
        thread = run.start()
        training = wait_for(lambda: client.get("/health").json()["training"])
        assert training["state"] == "running" and training["pid"] == run.process.pid  # type: ignore[union-attr]
        (workdir / "go").touch()
        wait_for(lambda: client.get("/health").json()["model_version"] == "fake-v2")
        body = wait_for(lambda: (b := client.get("/health").json())["training"]["state"] == "succeeded" and b)
        assert body["training"]["model_version"] == "fake-v2" and body["training"]["promoted"] is True
        thread.join(30)
