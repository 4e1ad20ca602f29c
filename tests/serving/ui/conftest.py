"""UI test fixtures: a deterministic coder for one clinical note, and the real app served by uvicorn on
127.0.0.1 in a thread (SQLite in tmp_path) for the browser tests."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from medcode.serving.app import create_app
from tests.fakes import FakeCoder, Rule
from tests.serving.child_server import free_port
from tests.serving.conftest import make_settings, new_key

NOTE = (
    "CHIEF COMPLAINT: Follow-up of diabetes and kidney disease.\n"
    "\n"
    "HISTORY OF PRESENT ILLNESS: 67-year-old woman with type 2 diabetes mellitus with diabetic chronic "
    "kidney disease. She has essential hypertension. She denies chest pain. Family history of breast "
    "cancer in her mother.\n"
    "\n"
    "ASSESSMENT AND PLAN: Type 2 diabetes with chronic kidney disease stage 3b. Hypertension, continue "
    "lisinopril. Hyperlipidemia, continue atorvastatin. Obesity.\n"
)
NEGATED_PHRASE = "chest pain"
ADD_PHRASE = "chronic kidney disease stage 3b"

UI_RULES = (
    Rule(
        "type 2 diabetes mellitus with diabetic chronic kidney disease",
        "E11.22",
        0.88,
        description="Type 2 diabetes mellitus with diabetic chronic kidney disease",
        warnings=("use_additional:N18.-",),
    ),
    Rule("essential hypertension", "I10", 0.95, description="Essential (primary) hypertension"),
    Rule("obesity", "E66.9", 0.41, description="Obesity, unspecified", warnings=("unspecified",)),
    Rule(
        "hyperlipidemia", "E78.5", 0.55, description="Hyperlipidemia, unspecified", warnings=("unspecified",)
    ),
    Rule("chest pain", "R07.9", 0.9, description="Chest pain, unspecified"),
)
PIPELINE_TERMS = [
    "diabetes",
    "type 2 diabetes mellitus",
    "chronic kidney disease",
    "hypertension",
    ("chest pain", "sign_symptom"),
    "breast cancer",
    "hyperlipidemia",
    "obesity",
]


def note_coder() -> FakeCoder:
    """Finds the phrases of `UI_RULES`; a phrase under a negation cue becomes a low candidate, never a code."""
    return FakeCoder(rules=UI_RULES, version="ui-test-coder-1", calibrated=False)


def encounter_payload(encounter_id: str, text: str = NOTE) -> dict[str, object]:
    return {
        "encounter_id": encounter_id,
        "patient": {"age": 67, "sex": "female"},
        "setting": "outpatient",
        "documents": [{"document_id": "d1", "type": "progress_note", "text": text}],
    }


@pytest.fixture(scope="session")
def small_pipeline() -> Any:
    """The real text pipeline (sections, negation and family context) over a small explicit lexicon."""
    text = pytest.importorskip("medcode.model.text")
    if not hasattr(text, "build_pipeline"):
        pytest.skip("medcode.model.text.build_pipeline is not available")
    return text.build_pipeline(terms=PIPELINE_TERMS)


@pytest.fixture
def ui_pipeline(small_pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Serve the small pipeline's mentions to the UI (deterministic, no lexicon build)."""
    monkeypatch.setattr("medcode.serving.ui.annotate._load_pipeline", lambda: small_pipeline)
    return small_pipeline


@dataclass
class LiveServer:
    url: str
    keys: dict[str, str]
    key_ids: dict[str, str]

    def api(self, role: str) -> httpx.Client:
        """An API client with the key of `role` (use it as a context manager)."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.keys[role]}"}, timeout=30
        )

    def submit(self, encounter_id: str, text: str | None = None, **extra: Any) -> None:
        """Submit an encounter to review as the integration: `text` its note (default NOTE), `extra` more
        fields of the payload."""
        payload = encounter_payload(encounter_id) if text is None else encounter_payload(encounter_id, text)
        payload.update(extra)
        with self.api("integration") as client:
            response = client.post("/v1/encounters", params={"route": "review"}, json=payload)
        assert response.status_code in (200, 201), response.text


@contextmanager
def serve(tmp_path: Path, coder: Any, **settings_overrides: Any) -> Iterator[LiveServer]:
    """The real app (SQLite file in tmp_path, the given coder, settings overrides such as
    `review_lease_seconds`) served by uvicorn on a free loopback port."""
    import uvicorn

    from medcode.serving.services.codes import search_codes
    from medcode.serving.services.review_checks import rule_tabular

    # build the code search index and the rules' tabular once, before the clock runs: built lazily inside
    # the first item's request they take longer than a page wait on a loaded machine
    search_codes("hypertension", None, 1)
    rule_tabular()
    settings = make_settings(
        f"sqlite:///{tmp_path / 'medcode.db'}",
        session_secret="ui-test-secret-of-at-least-32-characters",
        **settings_overrides,
    )
    app = create_app(settings, coder=coder)
    keys = {role: new_key(app, role, f"ui {role}") for role in ("coder", "integration", "admin")}
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-ui-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(
            url=f"http://127.0.0.1:{port}",
            keys=keys,
            key_ids={role: key.split("_")[1] for role, key in keys.items()},
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        app.state.db.dispose()


@pytest.fixture
def live_server(tmp_path: Path, ui_pipeline: Any) -> Iterator[LiveServer]:
    """The app with the deterministic note coder and the small text pipeline."""
    with serve(tmp_path, note_coder()) as server:
        yield server


PROBLEM_NOTE = (
    "ASSESSMENT AND PLAN: Urinary incontinence. Urge incontinence on exam. Essential hypertension.\n"
    "PROCEDURE: Bladder resection.\n"
)


PROBLEM_RULES = (
    Rule("Urinary incontinence", "R32", 0.72, description="Unspecified urinary incontinence"),
    Rule("Urge incontinence", "N39.41", 0.64, description="Urge incontinence"),
    Rule("Essential hypertension", "I10", 0.95, description="Essential (primary) hypertension"),
    Rule("Bladder resection", "0TTB", 0.55, system="ICD-10-PCS", description="Resection of Bladder"),
)
"""An Excludes1 pair (R32 with N39.41), I10 and an incomplete ICD-10-PCS code (0TTB), all suggested."""


@pytest.fixture
def problem_server(tmp_path: Path, ui_pipeline: Any) -> Iterator[LiveServer]:
    """The app with a coder that suggests PROBLEM_RULES' codes, which the finalize checks refuse."""
    with serve(
        tmp_path, FakeCoder(rules=PROBLEM_RULES, auto_accept=0.0, version="ui-problem-coder-1")
    ) as server:
        yield server


@pytest.fixture
def builtin_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The app with the built-in model and the full text pipeline (skipped while either is missing)."""
    try:
        from medcode.model.text import get_pipeline
        from medcode.settings import get_settings

        get_pipeline(get_settings().data_dir, get_settings().cache_dir)
        coder = get_settings().registry.load_model("builtin")
    except (ImportError, FileNotFoundError) as exc:
        pytest.skip(f"built-in model or text pipeline not available: {type(exc).__name__}: {exc}")
    with serve(tmp_path, coder) as server:
        yield server


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1366, "height": 768}
TIMEOUT_MS = 30_000  # every wait's default: generous, for a CI machine shared with other jobs


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium page (own user-data dir) at 1366x768."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-deps.sh)")
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        browser_page = context.new_page()
        browser_page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield browser_page
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
        assert not errors, f"JavaScript errors in the page: {errors}"
