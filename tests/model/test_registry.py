from __future__ import annotations

import logging
from pathlib import Path

import pytest

from medcode.data.errors import ModelNotFoundError
from medcode.model.builtin import BuiltinCoder
from medcode.settings import get_settings, reset_settings


@pytest.fixture
def empty_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    reset_settings()
    yield tmp_path
    reset_settings()


def test_builtin_reference_loads_the_builtin_model() -> None:
    assert isinstance(get_settings().registry.load_model("builtin"), BuiltinCoder)


def test_champion_without_registry_falls_back_to_builtin_with_warning(
    empty_registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="medcode.model.registry"):
        coder = get_settings().registry.load_model("champion")
    assert isinstance(coder, BuiltinCoder)
    assert "built-in" in caplog.text


def test_pack_path_reference_loads_the_pack(tmp_path: Path) -> None:
    BuiltinCoder().save(tmp_path / "pack")
    coder = get_settings().registry.load_model(str(tmp_path / "pack"))
    assert isinstance(coder, BuiltinCoder)


def test_malformed_reference_is_a_user_error() -> None:
    with pytest.raises(ModelNotFoundError, match="unknown model reference"):
        get_settings().registry.load_model("models:/no-version")
