"""Service test fixtures: a fresh database per test (SQLite file, or a new PostgreSQL database when
MEDCODE_TEST_POSTGRES_URL is set), an app around the fake coder, and one API key per role."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from medcode.serving.app import create_app
from medcode.serving.auth import ROLES, SYSTEM_PRINCIPAL
from medcode.serving.db import scratch_postgres_database
from medcode.serving.services import keys as key_service
from medcode.settings import Settings

from .fakes import FakeClock, FakeCoder

POSTGRES_URL = os.environ.get("MEDCODE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _postgres_database() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("MEDCODE_TEST_POSTGRES_URL is not set")
    with scratch_postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'medcode.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'medcode.db'}"


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "model_ref": "fake",
        "model_poll_seconds": 0,
        # tests make many requests and many failed ones from one client: the limits get their own tests
        "rate_limit_per_minute": 0,
        "signin_max_failures": 10_000,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def coder() -> FakeCoder:
    return FakeCoder()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def app(settings: Settings, coder: FakeCoder, clock: FakeClock) -> Iterator[FastAPI]:
    application = create_app(settings, coder=coder, clock=clock)
    yield application
    application.state.db.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def new_key(app: FastAPI, role: str, name: str | None = None) -> str:
    with app.state.db.sessions() as session:
        return key_service.create(session, SYSTEM_PRINCIPAL, role, name).key


@pytest.fixture
def keys(app: FastAPI) -> dict[str, str]:
    """One raw API key per role."""
    return {role: new_key(app, role, f"test {role}") for role in ROLES}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


Auth = Callable[[str], dict[str, str]]
"""The `as_role` fixture: a role's name -> the Authorization header of that role's key."""


@pytest.fixture
def as_role(keys: dict[str, str]) -> Auth:
    return lambda role: bearer(keys[role])
