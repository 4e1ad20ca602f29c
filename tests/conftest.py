"""Shared test fixtures: an isolated MEDCODE_HOME per test session and the shared-data marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medcode.settings import reset_settings

SHARED_DATA = Path(
    os.environ.get("MEDCODE_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "datasets"
)


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    if "MEDCODE_HOME" not in os.environ:
        os.environ["MEDCODE_HOME"] = str(tmp_path_factory.mktemp("medcode-home"))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    reset_settings()


@pytest.fixture
def shared_data() -> Path:
    """The shared public datasets; tests using it are marked `shared` and skip when it is absent."""
    if not (SHARED_DATA / "codiesp").is_dir():
        pytest.skip("shared datasets not present (set MEDCODE_DATA_DIR)")
    return SHARED_DATA
