from __future__ import annotations

import os

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


@pytest.mark.parametrize("environment", ["development", "production"])
def test_published_or_short_session_secret_is_refused_in_every_environment(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDCODE_ENV", environment)
    for secret in ("development-only-secret", "x", "a" * 31):
        monkeypatch.setenv("MEDCODE_SESSION_SECRET", secret)
        with pytest.raises(ValidationError):
            Settings()
    monkeypatch.setenv("MEDCODE_SESSION_SECRET", "s" * 32)
    assert Settings().session_secret == "s" * 32
    monkeypatch.delenv("MEDCODE_SESSION_SECRET")
    assert Settings().session_secret is None  # generated into MEDCODE_HOME by the service


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


def test_stray_environment_of_other_programs_changes_nothing(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    for name in list(os.environ):
        if name.startswith(("MEDCODE_", "MLFLOW_", "XDG_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    clean = Settings()
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("MODEL_REF", "models:/other/1")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "other-data"))
    monkeypatch.setenv("SESSION_SECRET", "x")
    stray = Settings()
    assert stray.model_dump() == clean.model_dump()
    assert stray.resolved_database_url == f"sqlite:///{tmp_path / '.local/share/medcode/medcode.db'}"
    assert stray.environment == "development" and stray.log_level == "INFO"


def test_default_home_is_the_xdg_data_folder_never_the_home_folder_itself(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MEDCODE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert Settings().home == tmp_path / ".local" / "share" / "medcode"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().home == tmp_path / "xdg" / "medcode"


def test_encoder_backend_auto_is_numpy_for_one_note_and_torch_for_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MEDCODE_ENCODER_BACKEND", raising=False)
    monkeypatch.delenv("MEDCODE_ENCODER_PRECISION", raising=False)
    settings = Settings()
    assert settings.runtime(one_note=True).encoder_backend == "numpy"
    assert settings.runtime().encoder_backend == "torch"
    assert settings.registry.runtime.encoder_backend == "torch"
    monkeypatch.setenv("MEDCODE_ENCODER_PRECISION", "bfloat16")  # numpy runs float32 only
    assert Settings().runtime(one_note=True).encoder_backend == "torch"
    monkeypatch.setenv("MEDCODE_ENCODER_BACKEND", "torch")
    monkeypatch.setenv("MEDCODE_ENCODER_PRECISION", "auto")
    assert Settings().runtime(one_note=True).encoder_backend == "torch"
    monkeypatch.setenv("MEDCODE_ENCODER_BACKEND", "numpy")
    assert Settings().runtime().encoder_backend == "numpy"
    monkeypatch.setenv("MEDCODE_ENCODER_BACKEND", "onnx")
    with pytest.raises(ValidationError):
        Settings()
