"""First run: on a `medcode serve` start with no champion, train the default preset in the background.

The service answers at once with the built-in model. Where the public datasets are there (MEDCODE_DATA_DIR
with CodiEsp's train split) and MEDCODE_AUTO_TRAIN is on, `FirstRun.start()` spawns one *training job*:
a small process (`python -m medcode.first_run FOLDER -- COMMAND...`) that

- holds an exclusive `flock` on `FOLDER/train.lock` for as long as it lives, so two starts (or two
  servers on one MEDCODE_HOME) never train twice; the kernel drops the lock when its holder dies, so a lock
  file left by a dead process (its pid is written inside, for people) is simply taken over;
- runs the training command (`medcode train --dataset codiesp ...`, which registers the model and applies
  the promotion gate only at its very end: a crash leaves the registry as it was) at a lower CPU priority,
  with its stdout and stderr in `FOLDER/train.log`;
- keeps `FOLDER/status.json` up to date (written to a temporary file, then renamed): state, step (the
  training's latest progress line from medcode's own loggers, never note text), started_at, pid, and at the
  end the model version, its registry version and the promotion verdict, or the error.

`/health` and the UI header read the status file (serving gets its path from the settings); the service's
model poller switches to the new champion once the promotion gate moves the alias. A restart with no
champion starts the job again. The server stops its job when it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from medcode.serving.process import pid_alive

if TYPE_CHECKING:
    from medcode.settings import Settings

log = logging.getLogger(__name__)

BUSY_EXIT = 3
"""The job's exit code when another job holds the lock."""
STEP_LINE = re.compile(r"^\S+ \S+ (?:INFO|WARNING) (medcode\.[\w.]+): (?P<message>.+)$")
"""A progress line of medcode's own loggers in the training log (the CLI's `-v` log format)."""
FOLDERS = re.compile(r"(?:/[\w.@+-]+)+/(?=[\w.@+-])")
"""The folders of an absolute path: /health is public, so steps name files without where they are."""
ERROR_LINE = re.compile(r"^medcode: (?:error: )?(?P<message>.+)$")
MAX_STEP_CHARS = 200


@dataclass(frozen=True)
class JobFiles:
    """The job's files, in one folder under MEDCODE_HOME (`Settings.auto_train_dir`)."""

    folder: Path

    @property
    def status(self) -> Path:
        return self.folder / "status.json"

    @property
    def lock(self) -> Path:
        return self.folder / "train.lock"

    @property
    def log(self) -> Path:
        return self.folder / "train.log"


# ------------------------------------------------------------------------------------------- status file


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file atomically: readers see the old content or the new, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(status, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# ------------------------------------------------------------------------------------------------- lock


def try_lock(path: Path) -> int | None:
    """An open descriptor holding the exclusive lock on `path`, or None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def lock_owner(path: Path) -> int | None:
    """The pid written in the lock file (informative: the flock decides who holds it)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return None
    pid = value.get("pid") if isinstance(value, dict) else None
    return pid if isinstance(pid, int) else None


def _write_lock_owner(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps({"pid": os.getpid(), "started_at": now_iso()}).encode())


# ------------------------------------------------------------------------------------- deciding to train


def training_command(data_dir: Path) -> list[str]:
    """`medcode -v train` of the default preset on CodiEsp (`-v`: its progress lines reach the log)."""
    return [
        sys.executable,
        "-m",
        "medcode.cli",
        "-v",
        "train",
        "--dataset",
        "codiesp",
        "--data-dir",
        str(data_dir),
        "--format",
        "json",
    ]


def reason_not_to_train(settings: Settings) -> str | None:
    """Why this start trains nothing (None: it should train). The registry is asked last (it imports MLflow)."""
    if not settings.auto_train:
        return "MEDCODE_AUTO_TRAIN is off"
    if settings.model_ref != "champion":
        return f"the service serves {settings.model_ref!r}, not the champion"
    missing = missing_data(settings.data_dir)
    if missing:
        return missing
    if settings.registry.champion_version() is not None:
        return "a champion model is registered"
    return None


def missing_data(data_dir: Path | None) -> str | None:
    """What training lacks in the datasets folder (None: CodiEsp's train split is there)."""
    if data_dir is None:
        return "MEDCODE_DATA_DIR is not set (see `medcode data fetch`)"
    from medcode.data.codiesp import available_splits

    if "train" not in available_splits(data_dir):
        return f"no CodiEsp train split under {data_dir} (see `medcode data fetch`)"
    return None


# ------------------------------------------------------------------------------------ the serve side


class FirstRun:
    """What `medcode serve` runs beside the server: decide, spawn the job, follow it in the log, stop it."""

    def __init__(
        self,
        settings: Settings,
        *,
        command: Sequence[str] | None = None,
        follow_seconds: float = 2.0,
    ) -> None:
        self.settings = settings
        self.files = JobFiles(settings.auto_train_dir)
        self.command = list(command) if command is not None else None
        self.follow_seconds = follow_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self.skipped: str | None = None
        self._stopping = threading.Event()

    def start(self) -> threading.Thread:
        """Decide and spawn in a daemon thread (asking the registry takes seconds: the server does not wait)."""
        thread = threading.Thread(target=self.run, name="medcode-first-run", daemon=True)
        thread.start()
        return thread

    def run(self) -> int | None:
        """Decide, spawn the job and follow it to its end; the job's exit code (None: no job started)."""
        try:
            self.process = self.spawn()
        except Exception as exc:  # the service keeps serving what it has
            log.warning("background training not started: %s", exc)
            return None
        if self.process is None:
            return None
        return self.follow(self.process)

    def spawn(self) -> subprocess.Popen[bytes] | None:
        reason = reason_not_to_train(self.settings)
        if reason is not None:
            self.skipped = reason
            log.info("no background training: %s", reason)
            if self.settings.auto_train and missing_data(self.settings.data_dir):
                self._note_skipped(reason)
            return None
        fd = try_lock(self.files.lock)
        if fd is None:
            owner = lock_owner(self.files.lock)
            self.skipped = f"a training job is already running (pid {owner})"
            log.info("background training: %s", self.skipped)
            return None
        os.close(fd)  # the job takes the lock itself; a start racing this one finds it held there
        if self._stopping.is_set():
            return None
        assert self.settings.data_dir is not None  # reason_not_to_train checked it
        command = self.command or training_command(self.settings.data_dir)
        env = {**os.environ, "MEDCODE_HOME": str(self.settings.home)}
        env["MEDCODE_DATA_DIR"] = str(self.settings.data_dir)
        log.info(
            "no champion model yet: training the default model in the background (log: %s)", self.files.log
        )
        return subprocess.Popen(
            [sys.executable, "-m", "medcode.first_run", str(self.files.folder), "--", *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def follow(self, process: subprocess.Popen[bytes]) -> int:
        """Log each new step of the job (state and step only) until it ends."""
        seen: tuple[Any, ...] = ()
        while True:
            code = process.poll()
            status = read_status(self.files.status) or {}
            if status.get("pid") == process.pid:
                shown = (status.get("state"), status.get("step"))
                if shown != seen and code is None:
                    log.info("background training %s: %s", *shown)
                seen = shown
            if code is not None:
                break
            self._stopping.wait(self.follow_seconds)
        if code == BUSY_EXIT:
            log.info("background training: another start's job is already running")
            return code
        status = read_status(self.files.status) or {}
        if status.get("state") == "succeeded":
            log.info(
                "background training done: %s; the service switches to the champion at its next registry poll",
                status.get("step"),
            )
        elif status.get("state") == "interrupted":
            log.info("background training stopped; the next start with no champion trains again")
        else:
            log.warning("background training failed: %s (log: %s)", status.get("error"), self.files.log)
        return code

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the job this start spawned (it records 'interrupted' and frees the lock)."""
        self._stopping.set()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _note_skipped(self, reason: str) -> None:
        """Say on /health why no training runs, unless a running job owns the status file."""
        fd = try_lock(self.files.lock)
        if fd is None:
            return
        try:
            step = FOLDERS.sub(".../", reason)
            write_status(self.files.status, {"state": "unavailable", "step": step, "updated_at": now_iso()})
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------- the job itself


def last_step(log_file: Path, tail_bytes: int = 65536) -> str | None:
    """The latest progress line of medcode's loggers in the training log."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(max(0, log_file.stat().st_size - tail_bytes))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        match = STEP_LINE.match(line)
        if match:
            return FOLDERS.sub(".../", match.group("message"))[:MAX_STEP_CHARS]
    return None


def outcome_of(log_file: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The training's JSON outcome (its last stdout line) and its last error line, from the log."""
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-200:]
    except OSError:
        return None, None
    outcome: dict[str, Any] | None = None
    error: str | None = None
    for line in lines:
        if line.startswith("{") and line.endswith("}"):
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict) and "version" in value:
                    outcome = value
        match = ERROR_LINE.match(line)
        if match:
            error = FOLDERS.sub(".../", match.group("message"))[:MAX_STEP_CHARS]
    return outcome, error


def finished_status(status: dict[str, Any], code: int, interrupted: bool, log_file: Path) -> dict[str, Any]:
    outcome, error = outcome_of(log_file)
    status = {**status, "finished_at": now_iso(), "exit_code": code}
    if interrupted:
        return {**status, "state": "interrupted", "step": "stopped with the server"}
    if code != 0 or outcome is None:
        return {**status, "state": "failed", "error": error or f"the training command exited with {code}"}
    promotion = outcome.get("promotion") or {}
    promoted = bool(promotion.get("promote"))
    registered = outcome.get("registered_version")
    step = f"model {outcome['version']} registered as version {registered}"
    step += (
        "; promoted to champion" if promoted else f"; not promoted: {promotion.get('reason', 'no gate run')}"
    )
    return {
        **status,
        "state": "succeeded",
        "step": step[:MAX_STEP_CHARS],
        "model_version": outcome["version"],
        "registered_version": registered,
        "promoted": promoted,
    }


def run_job(files: JobFiles, command: Sequence[str], poll_seconds: float = 1.0) -> int:
    """Hold the lock, run `command` with its output in the log, keep the status file current; stop (as
    'interrupted') on SIGTERM or SIGINT, or when the server that started the job is gone, however it ended."""
    server = os.getppid()
    fd = try_lock(files.lock)
    if fd is None:
        return BUSY_EXIT
    previous = lock_owner(files.lock)
    _write_lock_owner(fd)
    with contextlib.suppress(OSError):
        os.nice(10)  # the server keeps answering on a small machine; the training child inherits it
    status: dict[str, Any] = {
        "state": "running",
        "step": "starting",
        "started_at": now_iso(),
        "pid": os.getpid(),
    }
    write_status(files.status, status)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with files.log.open("ab") as output:
        _log_line(output, f"first-run training started at {status['started_at']} (pid {os.getpid()})")
        if previous is not None and previous != os.getpid() and not pid_alive(previous):
            _log_line(output, f"took over the lock left by pid {previous}, which is no longer running")
        child = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
        while child.poll() is None:
            if stop.wait(poll_seconds) or os.getppid() != server:
                stop.set()
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                break
            step = last_step(files.log)
            if step and step != status["step"]:
                status = {**status, "step": step}
                write_status(files.status, status)
        code = child.wait()
        status = finished_status(status, code, stop.is_set(), files.log)
        _log_line(output, f"first-run training {status['state']} at {status['finished_at']}")
    write_status(files.status, status)
    os.close(fd)
    return 0 if status["state"] == "succeeded" else 1


def _log_line(output: IO[bytes], text: str) -> None:
    output.write(f"== {text}\n".encode())
    output.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medcode.first_run", description=run_job.__doc__)
    parser.add_argument("folder", type=Path, help="the job's folder (lock, status file, log)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the training command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no training command after --")
    return run_job(JobFiles(args.folder), command)


if __name__ == "__main__":
    sys.exit(main())
