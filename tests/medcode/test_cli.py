from __future__ import annotations

import pytest

from medcode import cli
from medcode.data.errors import MedcodeError


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "medcode" in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_user_error_is_one_line_and_nonzero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(_: object) -> int:
        raise MedcodeError("something the user can fix")

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_command(parser(), boom))
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "medcode: error: something the user can fix"


def _with_command(parser, func):  # type: ignore[no-untyped-def]
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.add_parser("boom").set_defaults(func=func)
    return parser


def test_invalid_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from medcode.settings import Settings

    def reads_settings(_: object) -> int:
        Settings()
        return 0

    monkeypatch.setenv("MEDCODE_ENCODER_PRECISION", "fp16")
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_command(parser(), reads_settings))
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("medcode: error: invalid Settings: MEDCODE_ENCODER_PRECISION:")
    assert "'fp16'" in err


def test_progress_bars_are_off_when_stderr_is_not_a_terminal() -> None:
    import subprocess
    import sys

    script = (
        "from medcode.cli import quiet_progress_unless_terminal\n"
        "quiet_progress_unless_terminal()\n"
        "from tqdm import tqdm\n"
        "for _ in tqdm(range(3), desc='embedding code names'): pass\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TQDM_")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert run.stderr == ""
