"""API keys: hashed storage, authentication, and the `medcode keys` commands."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from medcode.cli import main
from medcode.serving.auth import Permission, Principal, authenticate_key, create_key, hash_key, revoke_key
from medcode.serving.db import Database
from medcode.serving.orm import ApiKey


@pytest.fixture
def database(db_url: str):  # type: ignore[no-untyped-def]
    db = Database.connect(db_url)
    yield db
    db.dispose()


def test_keys_are_stored_hashed_never_in_clear(database: Database) -> None:
    with database.sessions() as session:
        created = create_key(session, "coder", "Ana")
        session.commit()
        row = session.scalars(select(ApiKey)).one()
    assert created.key.startswith(f"mck_{created.key_id}_")
    assert row.key_hash == hash_key(created.key) and created.key not in (row.key_hash, row.key_id, row.name)


def test_authenticate_key_accepts_only_valid_unrevoked_keys(database: Database) -> None:
    with database.sessions() as session:
        created = create_key(session, "integration", "EHR")
        session.commit()
        assert authenticate_key(session, created.key) == Principal(created.key_id, "EHR", "integration")
        for bad in ("", "nonsense", f"mck_{created.key_id}_wrong", created.key + "x", "mck__x"):
            assert authenticate_key(session, bad) is None
        revoke_key(session, created.key_id)
        session.commit()
        assert authenticate_key(session, created.key) is None


def test_roles_grant_what_the_design_says() -> None:
    def can(role: str, permission: Permission) -> bool:
        return Principal("k", "n", role).can(permission)

    assert can("integration", Permission.SUGGEST) and not can("integration", Permission.REVIEW)
    assert can("coder", Permission.REVIEW) and not can("coder", Permission.ADMIN)
    assert can("scientist", Permission.ENCOUNTERS_READ) and not can("scientist", Permission.ENCOUNTERS_WRITE)
    assert all(can("admin", p) for p in Permission)
    assert not can("nobody", Permission.CODES)


def test_keys_cli_creates_lists_and_revokes(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--role", "coder", "--name", "Ana", "--db", sqlite_url]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("mck_")
    key_id = key.split("_")[1]

    assert main(["keys", "list", "--db", sqlite_url]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "coder" in listing and "Ana" in listing and key not in listing

    assert main(["keys", "revoke", key_id, "--db", sqlite_url]) == 0
    capsys.readouterr()
    db = Database.connect(sqlite_url)
    with db.sessions() as session:
        assert authenticate_key(session, key) is None
    db.dispose()
    assert main(["keys", "revoke", "nope", "--db", sqlite_url]) == 2
    assert "no API key" in capsys.readouterr().err


def test_keys_cli_refuses_an_unknown_role(sqlite_url: str) -> None:
    with pytest.raises(SystemExit):
        main(["keys", "create", "--role", "root", "--db", sqlite_url])


def test_a_bad_database_url_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "list", "--db", "nosuchdriver://x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medcode: error: cannot open the database") and "Traceback" not in err


@pytest.mark.parametrize("argv", [["serve", "--help"], ["keys", "--help"], ["keys", "create", "--help"]])
def test_commands_have_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0 and "usage" in capsys.readouterr().out
