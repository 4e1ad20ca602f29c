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
    add_output_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for sub in subcommand_parsers(parser):
        add_output_options(sub)
    return parser


def add_output_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """-v/--verbose, -q/--quiet and --progress/--no-progress, accepted before the subcommand and after
    it (`medcode train ... --quiet`); a subcommand's own option of the same name wins."""
    taken = parser._option_string_actions
    unset = None if top else argparse.SUPPRESS  # a subcommand's default never hides the top-level flag
    group = parser.add_argument_group("output") if not top else parser

    def add(flags: list[str], **kwargs: object) -> None:
        free = [f for f in flags if f not in taken]
        if free:
            group.add_argument(*free, **kwargs)  # type: ignore[arg-type]

    add(["-v", "--verbose"], action="store_true", default=unset or False, help="log debug messages")
    add(
        ["-q", "--quiet"],
        action="store_true",
        default=unset or False,
        help="errors only: no progress bars, no warnings",
    )
    add(
        ["--progress"],
        dest="progress",
        action="store_const",
        const=True,
        default=unset,
        help="show progress bars even when stderr is not a terminal",
    )
    add(["--no-progress"], dest="progress", action="store_const", const=False, default=unset, help="no bars")


def subcommand_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones (`data fetch`) included."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.append(sub)
                found.extend(subcommand_parsers(sub))
    return found


_quick_exit = False
"""Set by `main` when the command asks for a quick exit (`set_defaults(quick_exit=True)`)."""


def run() -> None:
    """The `medcode` program: `main`, then the exit. A one-note command (suggest, extract) leaves without
    the interpreter's clean-up of everything it loaded (about 0.5 s of a 4 s `medcode suggest`, freeing
    the model's millions of objects): its output is flushed first, and it holds nothing else to close."""
    code = main()
    if _quick_exit:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    global _quick_exit
    parser = build_parser()  # imports no tqdm, MLflow or transformers: they read their settings later
    args = parser.parse_args(argv)
    _quick_exit = bool(getattr(args, "quick_exit", False))
    verbose, quiet = bool(getattr(args, "verbose", False)), bool(getattr(args, "quiet", False))
    if verbose and quiet:
        parser.error("--verbose and --quiet exclude each other")
    configure_output(verbose, quiet, getattr(args, "progress", None))
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


THIRD_PARTY_LOGGERS = ("mlflow", "alembic", "httpx", "urllib3", "transformers", "ray", "numexpr")


def configure_output(verbose: bool = False, quiet: bool = False, progress: bool | None = None) -> None:
    """Log level, progress bars and third-party noise for one command, before it imports anything heavy.

    Default: warnings and errors of medcode; progress bars only when stderr is a terminal; third-party
    warnings (deprecations, MLflow's and transformers' notices) hidden. `verbose`: debug logging and every
    warning. `quiet`: errors only, no bars. `progress`: bars on (True) or off (False) whatever stderr is."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if progress is None:
        if quiet:
            progress = False
        else:
            quiet_progress_unless_terminal()
    if progress is not None:
        for name, value in (("TQDM_DISABLE", "1"), ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")):
            if progress:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if verbose:
        return
    import warnings

    warnings.filterwarnings("ignore")  # third-party deprecation and user warnings; -v shows them
    level = "ERROR" if quiet else "WARNING"
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", level)  # MLflow's own handler logs INFO otherwise
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", level.lower())
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warning from the tokenizers library
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.WARNING)


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
    run()
