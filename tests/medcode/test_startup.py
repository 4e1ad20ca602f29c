"""Quick starts of the command line: what each command imports, and its output options
(--quiet, --verbose, --progress), checked in child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "mlflow", "spacy", "sklearn")


def _run(code: str, home: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM_", "MEDCODE_"))}
    env.update(MEDCODE_HOME=str(home), **env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)


def _imports_after(argv: list[str], home: Path) -> set[str]:
    """The heavy modules a `medcode ARGV` run left imported (its stdout is discarded)."""
    code = (
        "import contextlib, io, sys\n"
        "from medcode.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main({argv!r})\n"
        f"print(rc, *sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    run = _run(code, home)
    assert run.returncode == 0, run.stderr
    rc, *modules = run.stdout.split()
    assert rc == "0", run.stderr
    return set(modules)


def test_codes_show_imports_no_model_library(tmp_path: Path) -> None:
    assert _imports_after(["codes", "show", "I10"], tmp_path) == set()


def test_extract_imports_spacy_but_not_torch(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Denies chest pain. Type 2 diabetes.")
    assert _imports_after(["extract", str(note)], tmp_path) == {"spacy"}


def test_torch_still_imports_after_spacy_was_imported_without_it(tmp_path: Path) -> None:
    code = (
        "from medcode.commands.text import import_spacy_without_torch\n"
        "import_spacy_without_torch()\n"
        "import thinc.compat, torch\n"
        "print(thinc.compat.has_torch, torch.ones(2).sum().item())\n"
    )
    run = _run(code, tmp_path)
    assert run.stdout.split() == ["False", "2.0"], run.stderr


BAR = (
    "from medcode.cli import configure_output\n"
    "configure_output({args})\n"
    "from tqdm import tqdm\n"
    "for _ in tqdm(range(3), desc='embedding code names'): pass\n"
    "import logging, warnings\n"
    "warnings.warn('a third-party deprecation', DeprecationWarning)\n"
    "logging.getLogger('medcode.x').warning('a medcode warning')\n"
    "logging.getLogger('mlflow.store').info('an MLflow notice')\n"
)


@pytest.mark.parametrize(
    ("args", "bar", "medcode_warning", "third_party"),
    [
        ("", False, True, False),  # stderr is a pipe here: no bar by default
        ("progress=True", True, True, False),
        ("quiet=True", False, False, False),
        ("quiet=True, progress=True", True, False, False),
        ("verbose=True", False, True, True),
        ("progress=False", False, True, False),
    ],
)
def test_output_options_decide_bars_and_messages(
    tmp_path: Path, args: str, bar: bool, medcode_warning: bool, third_party: bool
) -> None:
    run = _run(BAR.format(args=args), tmp_path)
    assert run.returncode == 0, run.stderr
    assert ("embedding code names" in run.stderr) is bar
    assert ("a medcode warning" in run.stderr) is medcode_warning
    assert ("a third-party deprecation" in run.stderr) is third_party
    assert ("an MLflow notice" in run.stderr) is third_party


def test_progress_flag_turns_bars_on_even_when_the_environment_disabled_them(tmp_path: Path) -> None:
    run = _run(BAR.format(args="progress=True"), tmp_path, TQDM_DISABLE="1")
    assert "embedding code names" in run.stderr


def test_output_options_are_accepted_after_the_subcommand() -> None:
    from medcode.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["suggest", "note.txt", "--quiet", "--progress"])
    assert args.quiet is True and args.progress is True and args.verbose is False
    args = parser.parse_args(["-v", "data", "fetch"])
    assert args.verbose is True and args.quiet is False and args.progress is None
    args = parser.parse_args(["data", "fetch", "--no-progress", "--verbose"])
    assert args.progress is False and args.verbose is True


def test_quiet_and_verbose_together_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from medcode.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["codes", "show", "I10", "--quiet", "--verbose"])
    assert exc.value.code == 2
    assert "--verbose and --quiet exclude each other" in capsys.readouterr().err


@pytest.mark.parametrize("dense", [False, True])
def test_suggest_with_a_trained_pack_imports_neither_torch_nor_scikit_learn(
    tmp_path: Path, dense: bool
) -> None:
    """A pack saved by this medcode stores its rankers and TF-IDF as arrays, and `medcode suggest` runs the
    sentence encoder in numpy: it imports spaCy (the text pipeline) and nothing else heavy, and answers as the
    model loaded in this process (torch encoder) does."""
    import json

    from medcode.data.types import Document, Encounter
    from medcode.model.catalog import Knowledge
    from medcode.model.trained.coder import DefaultConfig
    from medcode.training.default import fit_default
    from tests.model.synthetic import make_corpus

    config = DefaultConfig(
        use_dense=dense, dense_scope="training", folds=2, ranker_folds=2, ranker_max_iter=20
    )
    coder, _ = fit_default(make_corpus(30, seed=5), Knowledge(), config)
    pack = coder.save(tmp_path / "pack")
    note = tmp_path / "note.txt"
    text = "Essential hypertension. Type 2 diabetes mellitus. Denies fever."
    note.write_text(text)
    assert _imports_after(["suggest", "--model", str(pack), str(note)], tmp_path / "home") == {"spacy"}
    code = (
        "import contextlib, io, json\n"
        "from medcode.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    main(['suggest', '--model', {str(pack)!r}, '--compact', {str(note)!r}])\n"
        "print(json.dumps([[c['code'], c['confidence']] for c in json.loads(out.getvalue())['codes']]))\n"
    )
    run = _run(code, tmp_path / "home")
    assert run.returncode == 0, run.stderr
    expected = coder.suggest(
        Encounter(encounter_id="e1", documents=[Document(document_id="d1", text=text)])
    ).codes
    child = json.loads(run.stdout.strip().splitlines()[-1])
    assert [c for c, _ in child] == [c.code for c in expected]
    assert max((abs(p - c.confidence) for (_, p), c in zip(child, expected, strict=True)), default=0) <= 1e-6


def test_one_note_commands_exit_quickly_with_their_whole_output_and_exit_code(tmp_path: Path) -> None:
    """`medcode suggest` and `extract` leave without the interpreter's clean-up (os._exit): their output
    through a pipe is still whole, their exit codes are kept, and other commands exit as usual."""
    import json

    note = tmp_path / "note.txt"
    note.write_text("Essential hypertension. Denies fever.\n" * 40)
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('clean-up ran', file=sys.stderr))\n"
        "sys.argv = ['medcode'] + sys.argv[1:]\n"
        "from medcode.cli import run\n"
        "run()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM_", "MEDCODE_"))}
    env["MEDCODE_HOME"] = str(tmp_path / "home")

    def medcode(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=600
        )

    suggest = medcode("suggest", "--model", "builtin", str(note))
    assert suggest.returncode == 0, suggest.stderr
    assert json.loads(suggest.stdout)["encounter_id"] == "e1"
    assert "clean-up ran" not in suggest.stderr
    extract = medcode("extract", str(note), "--compact")
    assert extract.returncode == 0 and len(json.loads(extract.stdout)["mentions"]) >= 40
    missing = medcode("suggest", str(tmp_path / "missing.txt"))
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1, missing.stderr
    listed = medcode("codes", "show", "I10")
    assert listed.returncode == 0 and "clean-up ran" in listed.stderr
