from __future__ import annotations

import pytest
from pydantic import ValidationError

from medcode.settings import Settings


def test_database_defaults_to_sqlite_under_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MEDCODE_DATABASE_URL", raising=False)
    settings = Settings(MEDCODE_HOME=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'medcode.db'}"


def test_environment_overrides_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCODE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert Settings().resolved_database_url == "postgresql+psycopg://u@h/db"


def test_default_secret_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCODE_ENV", "production")
    monkeypatch.delenv("MEDCODE_SESSION_SECRET", raising=False)
    with pytest.raises(ValidationError):
        Settings()


def test_encoder_precision_defaults_to_auto_and_refuses_unknown_formats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MEDCODE_ENCODER_PRECISION", raising=False)
    assert Settings().encoder_precision == "auto"
    monkeypatch.setenv("MEDCODE_ENCODER_PRECISION", "float32")
    assert Settings().encoder_precision == "float32"
    monkeypatch.setenv("MEDCODE_ENCODER_PRECISION", "int4")
    with pytest.raises(ValidationError):
        Settings()
