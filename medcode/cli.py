"""The `medcode` console script. Each package contributes its subcommands through `register(subparsers)`.

Errors a user can act on print as one line on stderr with a non-zero exit; never a stack trace.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from medcode.data.errors import MedcodeError

# Modules that contribute subcommands, each with `register(subparsers) -> None`.
# A subcommand stores its handler as `func` (args -> exit code).
COMMAND_MODULES = (
    "medcode.commands.data",
    "medcode.commands.model",
    "medcode.commands.text",
    "medcode.training.cli",
    "medcode.commands.loop",
    "medcode.evaluation.cli",
    "medcode.commands.serve",
    "medcode.serving.cli",
    "medcode.batch.cli",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medcode",
        description="AI-assisted medical coding: suggest, review, train and evaluate.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    quiet_progress_unless_terminal()  # before any command module imports tqdm, which reads TQDM_* then
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except MedcodeError as exc:
        print(f"medcode: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medcode: interrupted", file=sys.stderr)
        return 130
    except ValidationError as exc:  # a setting (or a file) that does not validate: one line, no trace
        print(f"medcode: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"medcode: error: {exc}", file=sys.stderr)
        return 1


def quiet_progress_unless_terminal() -> None:
    """Progress bars (tqdm's and MLflow's artifact downloads) only when stderr is a terminal: a log file or a
    pipe gets no bar lines."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def one_line(exc: ValidationError) -> str:
    """'invalid Settings: MEDCODE_RULES: Input should be a valid boolean (got 'maybe')' and the like."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        got = error.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
        problems.append(f"{where}: {error.get('msg', 'invalid')}{shown}" if where else error.get("msg", ""))
    return f"invalid {exc.title}: " + "; ".join(problems)


if __name__ == "__main__":
    sys.exit(main())
