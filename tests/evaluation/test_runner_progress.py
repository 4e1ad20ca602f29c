"""The evaluation loop's progress bar follows the command line's choice (TQDM_DISABLE, set when stderr is not a
terminal), not only its own flag. Each case runs in a child process: tqdm reads TQDM_* when it is imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = (
    "from medcode.data.types import Document, Encounter\n"
    "from medcode.evaluation.runner import run_coder\n"
    "from tests.fakes import FakeCoder\n"
    "notes = [Encounter(encounter_id=f'e{{i}}', documents=[Document(document_id='d', text='fever')]) for i in range(3)]\n"
    "assert len(run_coder(FakeCoder(), notes, desc='suggest (bar test)', progress={progress}).results) == 3\n"
)


@pytest.mark.parametrize(
    ("progress", "disabled", "bar"),
    [(True, True, False), (True, False, True), (False, False, False)],
)
def test_bar_only_when_both_the_flag_and_the_command_line_allow_it(
    progress: bool, disabled: bool, bar: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    if disabled:
        env["TQDM_DISABLE"] = "1"
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(progress=progress)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    assert ("bar test" in run.stderr) is bar
