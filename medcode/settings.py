"""The one settings object of medcode, read from the environment (and a `.env` file if present).

Only `MEDCODE_*` variables and `MLFLOW_TRACKING_URI` configure medcode: a field is read from its alias alone,
never from its own name, so `HOME`, `DATABASE_URL` or `LOG_LEVEL` set for other programs change nothing.
Settings are read at the edges (the `medcode` CLI, the app factory, benchmark scripts) and passed down;
`data/` and `model/` never read them.
"""

from __future__ import annotations

import argparse
import os
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from medcode.model.registry import Registry
from medcode.model.runtime import Runtime

if TYPE_CHECKING:
    from medcode.model.rules.pipeline import RulesConfig


def _default_home() -> Path:
    """`$XDG_DATA_HOME/medcode`, else `~/.local/share/medcode`: never the home folder itself."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "medcode"


class Settings(BaseSettings):
    """Configuration of the whole product. Environment variables win over defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=False)

    environment: str = Field("development", alias="MEDCODE_ENV")
    home: Path = Field(default_factory=_default_home, alias="MEDCODE_HOME")
    data_dir: Path | None = Field(None, alias="MEDCODE_DATA_DIR")
    database_url: str | None = Field(None, alias="MEDCODE_DATABASE_URL")
    mlflow_tracking_uri: str | None = Field(None, alias="MLFLOW_TRACKING_URI")
    registered_model_name: str = Field("medcode", alias="MEDCODE_REGISTERED_MODEL")
    model_ref: str = Field("champion", alias="MEDCODE_MODEL")
    cpt_file: Path | None = Field(None, alias="MEDCODE_CPT_FILE")
    ncci_file: Path | None = Field(None, alias="MEDCODE_NCCI_FILE")
    rules_enabled: bool = Field(True, alias="MEDCODE_RULES")
    """The coding-rules step after ranking (MEDCODE_RULES=off switches it off, e.g. to measure it)."""
    encoder_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", alias="MEDCODE_ENCODER_PRECISION"
    )
    """Number format of the sentence encoder: "auto" (float32, the format of a pack's own vectors, so its own
    answers), or "bfloat16": about twice as fast where the CPU has native bfloat16 units, but it changes a
    trained pack's answers."""
    encoder_backend: Literal["auto", "torch", "numpy"] = Field("auto", alias="MEDCODE_ENCODER_BACKEND")
    """What runs the sentence encoder: "auto" is numpy (float32, no torch import) for a one-note command
    (`medcode suggest`) and torch for everything that codes many notes; the codes are the same either way."""
    max_note_chars: int = Field(200_000, alias="MEDCODE_MAX_NOTE_CHARS")
    review_lease_seconds: int = Field(900, alias="MEDCODE_REVIEW_LEASE_SECONDS")
    model_poll_seconds: float = Field(30.0, alias="MEDCODE_MODEL_POLL_SECONDS")
    session_secret: str | None = Field(None, alias="MEDCODE_SESSION_SECRET", min_length=32)
    """Signs the coder UI's session cookies; unset: one is generated into MEDCODE_HOME (0600) on first start."""
    log_level: str = Field("INFO", alias="MEDCODE_LOG_LEVEL")
    auto_train: bool = Field(True, alias="MEDCODE_AUTO_TRAIN")
    """On a `medcode serve` start with no champion and CodiEsp under MEDCODE_DATA_DIR, train the default
    preset in the background and switch to it (MEDCODE_AUTO_TRAIN=off: serve the built-in model)."""
    # -- limits of the HTTP service (serving/) --
    max_documents: int = Field(50, ge=1, alias="MEDCODE_MAX_DOCUMENTS")
    """Documents per encounter (more: 413)."""
    max_encounter_chars: int = Field(400_000, ge=1, alias="MEDCODE_MAX_ENCOUNTER_CHARS")
    """Characters of all of an encounter's documents together (more: 413)."""
    suggest_timeout_seconds: float = Field(60.0, gt=0, alias="MEDCODE_SUGGEST_TIMEOUT_SECONDS")
    """Time budget of one suggestion, waiting for a free worker included (over it: 503/504)."""
    suggest_workers: int = Field(0, ge=0, alias="MEDCODE_SUGGEST_WORKERS")
    """Suggestions computed at once (0: one per CPU); a timed-out one keeps its worker until it ends."""
    shutdown_grace_seconds: int = Field(3, ge=0, alias="MEDCODE_SHUTDOWN_GRACE_SECONDS")
    """On SIGTERM, how long requests in flight may still finish; then they are cancelled (their model work
    stops at its next check) and the server exits."""
    rate_limit_per_minute: int = Field(600, ge=0, alias="MEDCODE_RATE_LIMIT_PER_MINUTE")
    """Requests per API key (or UI session) per minute; 0 switches the limit off (over it: 429)."""
    signin_max_failures: int = Field(5, ge=1, alias="MEDCODE_SIGNIN_MAX_FAILURES")
    """Failed sign-ins or rejected keys from one client before it must wait (429, doubling each time)."""
    signin_backoff_seconds: float = Field(30.0, gt=0, alias="MEDCODE_SIGNIN_BACKOFF_SECONDS")

    @model_validator(mode="before")
    @classmethod
    def _field_names_given_in_code(cls, data: Any) -> Any:
        """`Settings(database_url=...)` in code works; the environment is read by alias only (`MEDCODE_*`)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, info in cls.model_fields.items():
            if name in data and info.alias and info.alias != name:
                data[info.alias] = data.pop(name)
        return data

    @model_validator(mode="after")
    def _refuse_the_published_secret(self) -> Settings:
        if self.session_secret == "development-only-secret":
            raise ValueError("MEDCODE_SESSION_SECRET is the published development default; use your own")
        return self

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'medcode.db'}"

    @property
    def resolved_mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def auto_train_dir(self) -> Path:
        """The first-run training job's lock, status file and log."""
        return self.home / "auto-train"

    @property
    def training_status_file(self) -> Path:
        """The first-run training job's status (JSON, replaced atomically); /health reads it."""
        from medcode.first_run import JobFiles

        return JobFiles(self.auto_train_dir).status

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @cached_property
    def registry(self) -> Registry:
        """The MLflow model registry these settings name, for the library code that loads models."""
        return Registry(
            tracking_uri=self.resolved_mlflow_uri,
            cache_dir=self.cache_dir,
            model_name=self.registered_model_name,
            data_dir=self.data_dir,
            builtin_rules=self.rules,
            runtime=self.runtime(),
        )

    def runtime(self, one_note: bool = False) -> Runtime:
        """How this machine runs a loaded pack; `one_note` for a command that codes a single note and exits
        (numpy's encoder spares it importing torch, unless bfloat16 or torch is asked for)."""
        backend = self.encoder_backend
        if backend == "auto":
            backend = "numpy" if one_note and self.encoder_precision != "bfloat16" else "torch"
        return Runtime(precision=self.encoder_precision, encoder_backend=backend)

    @cached_property
    def rules(self) -> RulesConfig:
        """The coding-rules config a model trained (or the built-in model run) with these settings gets."""
        from medcode.model.rules.pipeline import RulesConfig  # the rules are heavy: only when asked

        return RulesConfig.read(self.rules_enabled, self.ncci_file)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """`--model REF`, the same option on every command that codes encounters (suggest, batch, evaluate,
    benchmark, serve): read as `args.model or settings.model_ref` (MEDCODE_MODEL)."""
    parser.add_argument(
        "--model",
        default=None,
        metavar="REF",
        help="model reference: builtin, champion, models:/NAME/VERSION, models:/NAME@ALIAS or a pack folder "
        "(default: MEDCODE_MODEL, else champion)",
    )
